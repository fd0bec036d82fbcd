"""The Markdown report is computed from the rows it is given, in English and Chinese."""

import copy

import pytest

from qcore import render_markdown, scaling_rows
from qcore.analysis.report import rows_to_csv, trend_lines

SECTIONS_EN = ["## Summary", "## Results", "### Beside the reference report", "## Key findings",
               "### 1. Compression ratio", "### 2. Accuracy", "### 3. Quantization time", "## Where the bytes go",
               "## Memory savings on large", "## Conclusions and recommendations"]  # fmt: skip
SECTIONS_ZH = ["## 执行摘要", "## 测试结果汇总", "## 关键发现", "## 文件字节构成", "## 结论与建议"]


@pytest.fixture(scope="module")
def rows():
    return scaling_rows()


def test_english_report_follows_the_reference_structure(rows):
    md = render_markdown(rows, "en")
    positions = [md.index(s) for s in SECTIONS_EN]
    assert positions == sorted(positions)


def test_chinese_report_has_the_reference_sections(rows):
    md = render_markdown(rows, "zh")
    for s in SECTIONS_ZH:
        assert s in md


def test_report_prints_measured_figures(rows):
    md = render_markdown(rows, "en")
    for r in rows:
        assert f"{r['weight_cosine']:.6f}" in md
        assert f"{r['compression_ratio']:.2f}x" in md


def test_reference_figures_sit_beside_ours(rows):
    md = render_markdown(rows, "en")
    ours = rows[-1]
    assert (ours["source"], ours["method"]) == ("large", "int2")
    assert f"| large | int2 | {ours['compression_ratio']:.2f}x | 8.12x |" in md
    assert "| 0.8357 |" in md


def test_trends_follow_the_data_not_canned_text(rows):
    assert "falls by" in " ".join(trend_lines(rows)["accuracy"])
    flipped = copy.deepcopy(rows)
    for r, cos in zip([r for r in flipped if r["method"] == "int2"], (0.80, 0.85, 0.90), strict=True):
        r["weight_cosine"] = cos
    line = [x for x in trend_lines(flipped)["accuracy"] if "int2" in x][0]
    assert "rises by 0.100000" in line


def test_recommendations_pick_from_the_measured_rows(rows):
    md = render_markdown(rows, "en")
    conclusions = md[md.index("## Conclusions") :]
    assert "Accuracy first: **int8**" in conclusions
    assert "Memory first: **int2**" in conclusions


def test_csv_has_one_line_per_row(rows):
    lines = rows_to_csv(rows).splitlines()
    assert len(lines) == len(rows) + 1
    assert lines[0].startswith("source,params,quantized_params,method")


@pytest.fixture(scope="module")
def four_way():
    return scaling_rows(["small", "medium"], ["int8", "int2", "gptq:bits=2:group_size=64", "e8p"])


def test_the_two_bit_section_sets_vector_codes_beside_int8_int2_and_calibrated(four_way):
    for lang, title, cols in (("en", "## Two bits per weight, side by side", "| Model | INT8 | INT2 | Calibrated 2-bit | Vector 2-bit |"),
                              ("zh", "## 每权重 2 比特：并排对照", "| 模型 | INT8 | INT2 | 校准 2 比特 | 向量 2 比特 |")):  # fmt: skip
        md = render_markdown(four_way, lang)
        assert title in md and cols in md
    md = render_markdown(four_way, "en")
    e8p = next(r for r in four_way if r["source"] == "medium" and r["method"] == "e8p")
    assert f"{e8p['weight_cosine']:.6f} · {e8p['payload_meta_bpw']:.3f} bpw · e8p" in md
    assert "0.968246" in md and "0.939415" in md  # the bound and the scalar limit at 2 bits, as cosines


def test_the_two_bit_section_needs_something_to_compare(rows):
    assert "Two bits per weight" not in render_markdown(rows, "en")  # int8 and int2 alone: the reference's table
