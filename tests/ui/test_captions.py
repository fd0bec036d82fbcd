"""Captions say what is on screen: each built-in model described as what it is, and the levels caption true of
every method's histogram."""

from __future__ import annotations

import pytest

from tests.ui.test_app import TIMEOUT, start


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_each_built_in_model_is_described_as_what_it_is(lang):
    at = start()
    if lang == "zh":
        at.radio(key="lang").set_value("zh").run(timeout=TIMEOUT)
    expected = {
        "large": ("synthesized MLP", "合成 MLP"),
        "charlm": ("character-level transformer", "字符级 Transformer"),
        "digits-small": ("8×8 digits", "8×8 手写数字"),
    }
    for name, texts in expected.items():
        at.selectbox(key="preset").set_value(name).run(timeout=TIMEOUT)
        assert not at.exception
        captions = " ".join(c.value for c in at.sidebar.caption)
        assert texts[lang == "zh"] in captions, (name, captions)
        if name != "large":
            assert "MLP from the reference report" not in captions and "参考报告中的 MLP" not in captions


def test_the_levels_caption_names_no_one_method():
    at = start()
    at.selectbox(key="method").set_value("nf4").run(timeout=TIMEOUT)
    at.button(key="q_run").click().run(timeout=TIMEOUT)
    assert not at.exception
    captions = " ".join(c.value for c in at.caption)
    assert "levels the group really uses" in captions and "INT2" not in captions
