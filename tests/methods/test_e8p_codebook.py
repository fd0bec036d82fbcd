"""E8P: the sources and code book against plain references built from the construction, lattice membership,
decoding, and the structured nearest-codeword search against a brute-force scan of all 65536 codewords."""

import itertools

import pytest
import torch

from qcore.errors import QcoreError
from qcore.methods.e8p_codebook import e8p_codebook, e8p_decode, e8p_nearest, e8p_sources, gaussian_mse

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread

BRUTE_ROWS = 128  # rows per block of the brute force: a (128, 65536) float64 block is 64 MB
UNIQUE_GAP = 1e-3  # a nearest codeword counts as unique when the runner-up is this much farther (squared)


def brute_force(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(best, runner-up) squared distances (N, 2) float64 and the best code (N,) by scanning every codeword."""
    cb = e8p_codebook().double()  # (65536, 8)
    norms = cb.square().sum(1, keepdim=True).T  # (1, 65536)
    d2 = torch.empty(BRUTE_ROWS, len(cb), dtype=torch.float64)  # reused: fresh 64 MB blocks cost page faults
    dist, code = [], []
    for block in x.double().split(BRUTE_ROWS):
        part = d2[: len(block)]
        torch.addmm(norms, block, cb.T, alpha=-2, out=part)  # (B, 65536): |c|^2 - 2 <x, c>
        top = part.topk(2, dim=1, largest=False)
        dist.append(top.values + block.square().sum(1, keepdim=True))
        code.append(top.indices[:, 0])
    return torch.cat(dist), torch.cat(code)


def distance(x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """Euclidean distance (N,) float64 from each row of x to the codeword of its code."""
    return (x.double() - e8p_codebook().double()[codes.long()]).norm(dim=1)


def assert_nearest(x: torch.Tensor) -> torch.Tensor:
    """e8p_nearest is as near as the brute force everywhere, and the same code wherever the nearest is unique.
    Returns the (N,) mask of rows with a unique nearest codeword."""
    codes = e8p_nearest(x)
    best, brute = brute_force(x)
    torch.testing.assert_close(distance(x, codes), best[:, 0].clamp(min=0).sqrt(), rtol=0, atol=1e-5)
    unique = best[:, 1] - best[:, 0] > UNIQUE_GAP
    assert torch.equal(codes.long()[unique], brute[unique])
    return unique


def test_small_sources_are_the_half_integer_ball():
    # |D8^| in the ball |a|^2 <= 10, from the lattice itself: D8 + 1/2 points (|entries| <= 5/2 suffice), abs
    d8_hat = torch.cartesian_prod(*[torch.arange(-3.0, 3.0)] * 8) + 0.5  # (6**8, 8)
    keep = (d8_hat.sum(1) % 2 == 0) & (d8_hat.square().sum(1) <= 10)
    expected = torch.unique(d8_hat[keep].abs(), dim=0)  # lexicographic, as QuIP# orders them
    assert expected.shape == (227, 8)
    assert torch.equal(e8p_sources()[:227], expected)


def test_norm12_sources():
    sources = e8p_sources()
    assert len(torch.unique(sources, dim=0)) == 256
    norm12 = sources[227:]  # (29, 8)
    assert torch.equal(norm12.square().sum(1), torch.full((29,), 12.0))
    assert torch.equal((norm12 == 0.5).sum(1), torch.full((29,), 3))
    assert torch.equal((norm12 == 1.5).sum(1), torch.full((29,), 5))
    assert norm12[0].tolist() == [1.5, 0.5, 0.5, 0.5, 1.5, 1.5, 1.5, 1.5]  # the first and last of QuIP#'s list
    assert norm12[-1].tolist() == [1.5, 1.5, 0.5, 0.5, 1.5, 1.5, 1.5, 0.5]


def reference_codebook() -> torch.Tensor:
    """The code book from the write-up's description: every sign pattern of every source that lands in D8^ (an
    even sum), stored at source << 8 | signs of coordinates 1..7 in bits 7..1 | shift bit (1: +1/4). Each code
    must be filled exactly once."""
    rows = [None] * (1 << 16)
    for s, a in enumerate(e8p_sources().tolist()):
        for negated in itertools.product((0, 1), repeat=8):
            signed = [-v if n else v for v, n in zip(a, negated, strict=True)]
            if sum(signed) % 2 != 0:
                continue
            low = sum(n << (8 - i) for i, n in enumerate(negated) if i > 0)
            for bit, shift in ((1, 0.25), (0, -0.25)):
                assert rows[(s << 8) | low | bit] is None
                rows[(s << 8) | low | bit] = [v + shift for v in signed]
    return torch.tensor(rows)


def test_codebook_matches_the_construction():
    cb = e8p_codebook()
    assert cb.shape == (65536, 8) and cb.dtype == torch.float32
    assert torch.equal(cb, reference_codebook())
    assert len(torch.unique(cb, dim=0)) == 65536


def test_codebook_lies_in_e8_plus_quarter():
    cb = e8p_codebook().double()
    codes = torch.arange(65536)
    plus = codes % 2 == 1  # bit 0 set: shift +1/4
    z = cb - 0.25  # must be in E8: all integers or all half-integers, with an even sum
    assert torch.equal(z[plus] - 0.5, (z[plus] - 0.5).round())  # +1/4: z in D8^, all half-integers
    assert torch.equal(z[~plus], z[~plus].round())  # -1/4: z in D8, all integers
    assert torch.equal(z.sum(1) % 2, torch.zeros(65536, dtype=torch.float64))
    shift = torch.where(plus, 0.25, -0.25).double().unsqueeze(1)  # (65536, 1)
    assert torch.equal((cb - shift).abs(), e8p_sources().double()[codes >> 8])  # signs of the code's source


def test_worked_example_of_the_write_up():
    # source (1/2, 1/2, 1/2, 3/2, 1/2, 1/2, 1/2, 1/2) (odd sum), sign bits 1001011 (coordinates 1, 4, 6, 7), +1/4:
    # the parity adds coordinate 0. (The write-up prints -3/4 for coordinate 1, but its own signed vector has
    # -1/2 there, and -1/2 + 1/4 = -1/4.)
    s = int((e8p_sources() == torch.tensor([0.5, 0.5, 0.5, 1.5, 0.5, 0.5, 0.5, 0.5])).all(1).nonzero())
    expected = [-0.25, -0.25, 0.75, 1.75, -0.25, 0.75, -0.25, -0.25]
    assert e8p_decode(torch.tensor((s << 8) | 0b10010111)).tolist() == expected


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64, torch.uint16])
def test_decode_equals_indexing_for_every_code(dtype):
    codes = torch.arange(65536).to(dtype)
    assert torch.equal(e8p_decode(codes), e8p_codebook())
    grid = torch.randint(0, 65536, (3, 5, 7), generator=torch.Generator().manual_seed(0))
    assert torch.equal(e8p_decode(grid.to(dtype)), e8p_codebook()[grid])  # (3, 5, 7, 8)


def test_decode_rejects_bad_codes():
    for bad in (torch.tensor([65536]), torch.tensor([-1]), torch.tensor([1.0])):
        with pytest.raises(QcoreError):
            e8p_decode(bad)


def test_nearest_maps_every_codeword_to_itself():
    codes = e8p_nearest(e8p_codebook())
    assert codes.dtype == torch.int32
    assert torch.equal(codes.long(), torch.arange(65536))


@pytest.mark.parametrize("scale", [0.5, 1.0, 2.0, 4.0])
def test_nearest_equals_brute_force_on_gaussians(scale):
    x = torch.randn(4096, 8, generator=torch.Generator().manual_seed(int(scale * 10))) * scale
    assert assert_nearest(x).float().mean() > 0.95  # the comparison of codes covers almost every row


@pytest.mark.parametrize("step", [1.0, 0.5, 0.25])
def test_nearest_equals_brute_force_with_exact_ties(step):
    # coordinates on a grid of integers, half-integers or quarters (the codewords' own grid), zeros included:
    # many rows have several nearest codewords, which must be as near as the brute force's
    g = torch.Generator().manual_seed(int(step * 4))
    x = torch.randint(-6, 7, (2048, 8), generator=g).float() * step
    unique = assert_nearest(x)
    assert unique.any() and not unique.all()


def test_ties_follow_the_stated_rule():
    # x = 0: all -1/4 (code 255, shift +1/4) and all +1/4 (code 0, shift -1/4) tie, and +1/4 wins.
    # x = (5/4, 5/4, 3/4, .., 3/4): 1/2 + 1/4 everywhere (code 1) and (3/2, 3/2, 1/2, ..) + 1/4 (code 50177) tie,
    # and the shape listed first (all 1/2) wins.
    x = torch.tensor([[0.0] * 8, [1.25, 1.25] + [0.75] * 6])
    best, _ = brute_force(x)
    assert torch.equal(best[:, 0], best[:, 1])  # genuine ties
    assert e8p_nearest(x).tolist() == [255, 1]
    assert e8p_decode(torch.tensor([255, 0, 1, 50177])).tolist() == [
        [-0.25] * 8, [0.25] * 8, [0.75] * 8, [1.75, 1.75] + [0.75] * 6
    ]  # fmt: skip


def test_nearest_is_deterministic_and_independent_of_chunking():
    g = torch.Generator().manual_seed(5)
    x = torch.cat([torch.randn(3000, 8, generator=g), torch.randint(-4, 5, (3000, 8), generator=g) / 2.0])
    codes = e8p_nearest(x)
    assert torch.equal(codes, e8p_nearest(x))
    assert torch.equal(codes[1000:4000], e8p_nearest(x[1000:4000]))
    assert torch.equal(codes, e8p_nearest(x.double()))


def test_nearest_rejects_bad_input():
    with pytest.raises(QcoreError):
        e8p_nearest(torch.zeros(4, 7))
    with pytest.raises(QcoreError):
        e8p_nearest(torch.full((4, 8), float("nan")))


def test_gaussian_mse():
    D, s = gaussian_mse(samples=1 << 18, seed=0)
    assert abs(D - 0.089) <= 0.03 * 0.089  # E8P's figure for N(0, 1) at the best scale
    assert D < 0.1175  # better than the optimal 2-bit scalar (Lloyd-Max) quantizer
    assert 0.9 < s < 1.05
