"""`python -m qcore extrapolate --gpu NAME`: the GPU what-if on the command line, as the Extrapolate page shows it."""

import json
import subprocess
import sys

import pytest

from qcore.analysis.archs import get_arch
from qcore.analysis.gpus import GPUS, Overhead, gpu_what_if
from qcore.analysis.sizing import arch_sizes
from qcore.api.specs import EXTRAPOLATE_POLICY, ExtrapolationSpec, Target
from tests.conftest import ROOT


def qcore(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qcore", *args], cwd=ROOT, capture_output=True, text=True)


def test_gpu_flag_prints_qcores_fit_and_tokens_per_second():
    proc = qcore(
        "extrapolate", "--arch", "LLaMA-7B", "--method", "int2", "--gpu", "rtx 4090", "--no-accuracy", "--json"
    )
    assert proc.returncode == 0, proc.stderr
    g = json.loads(proc.stdout)["gpu"]
    arch = get_arch("LLaMA-7B")
    sizes = arch_sizes(arch, "int2", {}, EXTRAPOLATE_POLICY)
    assert g == json.loads(json.dumps(gpu_what_if(arch, sizes["quantized_bytes"], sizes["bytes_by_kind"],
                                                  GPUS["RTX 4090"], 4096)))  # fmt: skip
    assert g["gpu"] == "RTX 4090" and g["fits"] and round(g["decode_tokens_per_s"], 2) == 264.99
    text = qcore("extrapolate", "--arch", "LLaMA-7B", "--method", "int2", "--gpu", "RTX 4090", "--no-accuracy").stdout
    assert "fits: 19.53 GiB free" in text  # the default policy: head quantized, embeddings FP16
    assert "decode: at most 265.0 tokens/s (upper bound, bandwidth-bound: 3.54 GiB read per step)" in text
    assert "prefill: about 11562 tokens/s (compute-bound estimate" in text


def test_without_gpu_the_document_is_unchanged_and_with_it_the_overhead_is_the_users():
    args = ("extrapolate", "--arch", "Qwen3-0.6B", "--method", "int8", "--no-accuracy", "--context", "8192",
            "--kv-bits", "8", "--json")  # fmt: skip
    plain = json.loads(qcore(*args).stdout)
    assert "gpu" not in plain
    doc = json.loads(qcore(*args, "--gpu", "L4", "--overhead-pct", "25", "--overhead-gib", "2").stdout)
    g = doc.pop("gpu")
    assert doc == plain  # the GPU adds its section and changes nothing else
    assert g["overhead"] == {"pct": 25.0, "fixed_gib": 2.0} and (g["context"], g["kv_bits"]) == (8192, 8)
    assert g["overhead_bytes"] == plain["quantized_bytes"] * 0.25 + 2 * 1024**3
    assert g["kv_bytes"] == plain["kv_cache"]["bytes"]


def test_a_spec_with_a_gpu_prints_the_line_that_repeats_it():
    spec = ExtrapolationSpec.make(
        Target("catalog", "LLaMA-7B"), "int2", gpu="rtx-4060-ti-16gb", overhead=Overhead(15.0, 1.0), accuracy=False
    )
    line = spec.command_line()
    assert line.endswith("--gpu 'RTX 4060 Ti 16GB' --overhead-pct 15.0 --overhead-gib 1.0 --no-accuracy --json")
    assert ExtrapolationSpec.make(Target("catalog", "LLaMA-7B"), "int2", gpu="").command_line().count("--gpu") == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--gpu", "GTX 1080"), "error: unknown GPU 'GTX 1080'; choose one of: H200 SXM, "),
        (("--overhead-pct", "20"), "error: --overhead-pct and --overhead-gib set the --gpu what-if"),
        (("--gpu", "T4", "--overhead-gib", "-1"), "error: overhead must be 0-1000 % and 0-1024 GiB"),
    ],
)
def test_bad_gpu_input_exits_2_with_one_line(args, message):
    proc = qcore("extrapolate", "--arch", "LLaMA-7B", "--method", "int2", "--no-accuracy", *args)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith(message) and proc.stderr.count("\n") == 1


def test_help_lists_the_gpus():
    text = " ".join(qcore("extrapolate", "--help").stdout.split())  # argparse wraps the help
    assert all(name in text for name in GPUS) and "--overhead-pct" in text
