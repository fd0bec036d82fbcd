"""The Gaussian limits every run is placed against: the distortion-rate bound and the best scalar quantizer."""

import math

import pytest
import torch

from qcore import load_preset, run
from qcore.measure.metrics import LLOYD_MAX_D, limits, lloyd_max, rd_bound, to_db


def test_the_bound_is_six_db_per_bit():
    for rate in (1, 2, 2.5, 4):
        assert rd_bound(rate) == 2.0 ** (-2 * rate)
        assert to_db(rd_bound(rate)) == pytest.approx(6.0206 * rate, rel=1e-4)
    assert math.sqrt(1 - rd_bound(2)) == pytest.approx(0.9682, abs=1e-4)  # the cosine no 2-bit code can beat


def test_lloyd_max_at_integer_rates_and_time_sharing_between():
    assert [lloyd_max(r) for r in (1, 2, 3, 4)] == [0.3634, 0.1175, 0.03454, 0.009497]
    assert math.sqrt(1 - lloyd_max(2)) == pytest.approx(0.939, abs=5e-4)  # the scalar limit at 2 bits
    assert lloyd_max(2.5) == pytest.approx((LLOYD_MAX_D[2] + LLOYD_MAX_D[3]) / 2)
    assert lloyd_max(0) == 1.0 and lloyd_max(5) == pytest.approx(LLOYD_MAX_D[4] / 4)
    rates = torch.linspace(0.1, 6, 60).tolist()
    assert all(rd_bound(r) < lloyd_max(r) for r in rates)  # the bound is below every scalar quantizer


def test_lloyd_max_matches_a_plain_lloyd_iteration_at_two_bits():
    """A plain Lloyd iteration on N(0, 1) samples converges to Max's 0.1175 at 4 levels."""
    x = torch.randn(1 << 20, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    levels = torch.tensor([-1.5, -0.5, 0.5, 1.5], dtype=torch.float64)
    for _ in range(60):
        edges = (levels[1:] + levels[:-1]) / 2
        cell = torch.bucketize(x, edges)
        levels = torch.stack([x[cell == i].mean() for i in range(4)])
    d = float(((x - levels[torch.bucketize(x, (levels[1:] + levels[:-1]) / 2)]) ** 2).mean())
    assert d == pytest.approx(LLOYD_MAX_D[2], rel=0.01)


def test_every_run_carries_its_place_against_the_limits():
    rec = run(load_preset("large"), "int2").record
    lim = rec["limits"]
    assert lim["bpw"] == rec["payload_meta_bpw"]
    assert lim["gap_to_bound_db"] == pytest.approx(lim["bound_sqnr_db"] - rec["sqnr_db"])
    assert lim["gap_to_scalar_db"] > 0  # min-max int2 on 1024-long rows is far from the best scalar quantizer
    assert limits(None, 3.0) is None
