"""The selection in the URL: encode and decode round-trip for every method's options, the policy and the codec; a
bad or unknown parameter is left out with a note, never an exception."""

from __future__ import annotations

import pytest

from qcore import METHODS, QcoreError, get_method
from qcore.api.specs import as_options
from ui import urlstate
from ui.urlstate import RESERVED, decode, encode

PRESETS = ["small", "medium", "large", "charlm", "digits-small"]
SERVER = ["models/tiny.safetensors", "llama-char"]
DEFAULT_POLICY = {"pol_head": True, "pol_emb": False, "pol_include": "", "pol_exclude": ""}


def candidates(opt) -> list:
    """Values of `opt` other than its default, to try in turn."""
    if opt.choices:
        return [c for c in opt.choices if c != opt.default]
    if isinstance(opt.default, bool):
        return [not opt.default]
    if isinstance(opt.default, int):
        return [opt.default + 32] if opt.name == "group_size" else [opt.default + 1]
    return [opt.default / 2, opt.default * 2]


def changed_options(method: str) -> dict:
    """Each settable option of `method` off its default, valid together (checked by the method's config)."""
    out: dict = {}
    for opt in settable(method):
        for value in candidates(opt):
            try:
                get_method(method).make_config(**out, **{opt.name: value})
            except QcoreError:
                continue
            out[opt.name] = value
            break
    return out


def settable(method: str):
    return [o for o in get_method(method).options() if not o.fixed]


@pytest.mark.parametrize("method", list(METHODS))
def test_every_option_of_every_method_round_trips(method):
    changed = changed_options(method)
    assert len(changed) == len(settable(method))  # every option is off its default
    options = as_options({**{o.name: o.default for o in settable(method)}, **changed})
    params = encode("preset", "charlm", method, options, DEFAULT_POLICY)
    assert set(params) == {"model", "method", *changed}  # only the options off their defaults
    back = decode(params, PRESETS)
    assert back.notes == []
    want = {"source": "preset", "preset": "charlm", "method": method}
    want |= {f"opt_{method}_{k}": v for k, v in changed.items()}
    assert back.values == want
    for k, v in changed.items():  # the types survive: a float stays a float, a switch a bool
        assert type(back.values[f"opt_{method}_{k}"]) is type(v)


def test_the_default_selection_writes_model_and_method_only():
    options = as_options({o.name: o.default for o in settable("int2")})
    assert encode("preset", "large", "int2", options, DEFAULT_POLICY) == {"model": "large", "method": "int2"}


def test_policy_codec_and_server_files_round_trip():
    policy = {"pol_head": False, "pol_emb": True, "pol_include": r"fc\d", "pol_exclude": "fc3 "}
    params = encode("server", "llama-char", "rtn", as_options({"bits": 3}), policy, "zstd")
    assert params == {
        "src": "server", "model": "llama-char", "method": "rtn", "bits": "3", "head": "0", "emb": "1",
        "include": r"fc\d", "exclude": "fc3", "codec": "zstd",
    }  # fmt: skip
    back = decode(params, PRESETS, SERVER)
    assert back.notes == []
    assert back.values == {
        "source": "server", "server_file": "llama-char", "method": "rtn", "opt_rtn_bits": 3, "pol_head": False,
        "pol_emb": True, "pol_include": r"fc\d", "pol_exclude": "fc3", "q_codec": "zstd",
    }  # fmt: skip


def test_an_upload_cannot_be_restored_and_the_link_says_so():
    params = encode("upload", "model.safetensors", "int8", (), DEFAULT_POLICY)
    assert params == {"src": "upload", "method": "int8"}  # the file's name is not written
    back = decode(params, PRESETS)
    assert back.values == {"source": "upload", "method": "int8"}
    assert [key for key, _ in back.notes] == ["url_upload"]


@pytest.mark.parametrize(
    "params, note",
    [
        ({"model": "huge"}, "url_no_model"),
        ({"src": "server", "model": "../etc/passwd"}, "url_no_server"),
        ({"src": "ftp", "model": "small"}, "url_bad"),
        ({"method": "magic"}, "url_bad"),
        ({"method": "rtn", "bits": "5"}, "url_bad"),  # not one of the choices
        ({"method": "rtn", "bits": "four"}, "url_bad"),
        ({"method": "rtn", "group_size": "-64"}, "url_bad"),
        ({"method": "rtn", "group_size": "64.5"}, "url_bad"),
        ({"method": "rtn", "sym": "maybe"}, "url_bad"),
        ({"method": "gptq", "damp": "nan"}, "url_bad"),
        ({"method": "gptq", "damp": "inf"}, "url_bad"),
        ({"method": "gptq", "damp": "-1"}, "url_options"),  # a float, but not a valid damping
        ({"method": "mixed", "min_bits": "4", "max_bits": "2"}, "url_options"),  # each valid, not together
        ({"method": "rtn", "L": "10"}, "url_unknown"),  # trellis's option, not rtn's
        ({"method": "int8", "bits": "4"}, "url_unknown"),  # int8 pins its width
        ({"bits": "4"}, "url_no_method"),
        ({"head": "2"}, "url_bad"),
        ({"include": "(unclosed"}, "url_bad"),
        ({"codec": "gzip"}, "url_bad"),
        ({"model": "x" * 600}, "url_too_long"),
    ],
)
def test_a_bad_parameter_is_left_out_with_a_note(params, note):
    back = decode(params, PRESETS, SERVER)
    assert note in [key for key, _ in back.notes], back.notes
    assert not any(k.startswith("opt_") for k in back.values)  # no option from a bad link gets through
    for key in ("preset", "server_file", "pol_head", "pol_include", "q_codec"):
        assert key not in back.values


def test_good_parameters_beside_bad_ones_are_kept():
    back = decode({"model": "small", "method": "rtn", "bits": "3", "sym": "maybe", "utm_source": "mail"}, PRESETS)
    assert back.values == {"source": "preset", "preset": "small", "method": "rtn", "opt_rtn_bits": 3}
    assert sorted(key for key, _ in back.notes) == ["url_bad", "url_unknown"]


def test_a_repeated_parameter_counts_as_its_last_value():
    back = decode({"model": ["large", "small"], "method": ["int2"]}, PRESETS)
    assert back.values["preset"] == "small" and back.values["method"] == "int2"


@pytest.mark.parametrize("junk", ["", " ", "%00", "☃", "1e309", "[]", "{}", "None", "-0", "0x10", "\n"])
def test_junk_never_raises(junk):
    names = [*RESERVED, "bits", "group_size", "damp", "L", junk or "empty"]
    back = decode({name: junk for name in names}, PRESETS, SERVER)
    assert isinstance(back.values, dict) and back.notes


def test_no_method_option_takes_a_reserved_name():
    clash = {o.name for m in METHODS.values() for o in m.options()} & set(RESERVED)
    assert not clash, clash


def test_every_note_has_text_in_both_languages():
    from ui.i18n import catalog

    keys = {"url_bad", "url_too_long", "url_upload", "url_no_server", "url_no_model", "url_no_method", "url_unknown",
            "url_options", "url_failed"}  # fmt: skip
    assert keys <= set(catalog("en")) and keys <= set(catalog("zh"))
    assert urlstate.MAX_VALUE >= 200
