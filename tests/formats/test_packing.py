"""Bit packing: round trips, dense lengths, pinned bytes and a plain bit-loop reference."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qcore.errors import QcoreError
from qcore.formats.packing import PACK_BITS, pack_codes, packed_nbytes, unpack_codes

LENGTHS = (0, 1, 2, 3, 7, 8, 9, 15, 17, 1000, 1001)


def random_codes(n: int, bits: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2**bits, size=n, dtype=np.uint8 if bits <= 8 else np.uint16)


def reference_pack(codes, bits: int) -> bytes:
    """The documented contract, one bit at a time: code i fills stream bits [bits*i, bits*i + bits),
    stream bit k is bit k % 8 of byte k // 8."""
    out = bytearray((bits * len(codes) + 7) // 8)
    for i, code in enumerate(codes):
        for b in range(bits):
            if (int(code) >> b) & 1:
                k = bits * i + b
                out[k // 8] |= 1 << (k % 8)
    return bytes(out)


@pytest.mark.parametrize("bits", PACK_BITS)
@pytest.mark.parametrize("n", LENGTHS)
def test_round_trip(bits, n):
    codes = random_codes(n, bits, seed=n)
    data = pack_codes(codes, bits)
    got = unpack_codes(data, bits, n)
    assert got.dtype == (np.uint8 if bits <= 8 else np.uint16)
    np.testing.assert_array_equal(got, codes)


@pytest.mark.parametrize("bits", PACK_BITS)
@pytest.mark.parametrize("n", LENGTHS)
def test_packed_length_is_dense(bits, n):
    data = pack_codes(random_codes(n, bits), bits)
    assert len(data) == -(-bits * n // 8) == packed_nbytes(n, bits)


def test_2d_codes_pack_row_major():
    codes = random_codes(6 * 7, 3).reshape(6, 7)
    assert pack_codes(codes, 3) == pack_codes(codes.reshape(-1), 3)


def test_pinned_bytes_2bit():
    # 1 | 2 << 2 | 3 << 4 | 0 << 6 = 0x39: code 0 sits in the lowest two bits
    assert pack_codes(np.array([1, 2, 3, 0], np.uint8), 2) == b"\x39"


def test_pinned_bytes_4bit():
    assert pack_codes(np.array([0x1, 0xF, 0x3], np.uint8), 4) == b"\xf1\x03"


def test_pinned_bytes_3bit_full_word():
    # sum(c_j << 3j) for c = 1..7, 0 is 0x1F58D1, written little-endian
    assert pack_codes(np.array([1, 2, 3, 4, 5, 6, 7, 0], np.uint8), 3) == b"\xd1\x58\x1f"


def test_pinned_bytes_3bit_partial_last_byte_is_zero_padded():
    # 7 | 7 << 3 | 7 << 6 = 0x1FF: 9 bits, so the second byte uses one bit and its 7 high bits are 0
    assert pack_codes(np.array([7, 7, 7], np.uint8), 3) == b"\xff\x01"
    # 6 | 1 << 3 | 4 << 6 | 7 << 9 = 0xF0E: 12 bits, high nibble of the last byte is 0
    assert pack_codes(np.array([6, 1, 4, 7], np.uint8), 3) == b"\x0e\x0f"


def test_pinned_bytes_8bit_is_identity():
    assert pack_codes(np.array([0, 1, 254, 255], np.uint8), 8) == b"\x00\x01\xfe\xff"


@pytest.mark.parametrize("bits", PACK_BITS)
@pytest.mark.parametrize("n", (1, 5, 8, 9, 17, 257))
def test_matches_bit_loop_reference(bits, n):
    codes = random_codes(n, bits, seed=100 + n)
    assert pack_codes(codes, bits) == reference_pack(codes, bits)


@pytest.mark.parametrize("bits", (0, 17, 32))
def test_pack_rejects_unsupported_width(bits):
    with pytest.raises(QcoreError, match="cannot pack"):
        pack_codes(np.zeros(4, np.uint8), bits)


def test_unpack_rejects_unsupported_width():
    with pytest.raises(QcoreError, match="cannot pack 17-bit codes"):
        unpack_codes(b"\x00" * 3, 17, 1)


def test_pinned_bytes_16bit_are_little_endian_words():
    assert pack_codes(np.array([0x1234, 0xFFFF, 1], np.uint16), 16) == b"\x34\x12\xff\xff\x01\x00"


def test_pinned_bytes_1bit():
    assert pack_codes(np.array([1, 0, 1, 1, 0, 0, 0, 0, 1], np.uint8), 1) == b"\x0d\x01"


@pytest.mark.parametrize("bits", PACK_BITS)
@pytest.mark.parametrize("delta", (-1, 1))
def test_unpack_rejects_wrong_byte_length(bits, delta):
    data = pack_codes(random_codes(17, bits), bits)
    with pytest.raises(QcoreError, match=f"expected {len(data)}"):
        unpack_codes(data + b"\x00" if delta > 0 else data[:-1], bits, 17)


@settings(database=None, max_examples=200)
@given(st.data())
def test_round_trip_property(data):
    bits = data.draw(st.sampled_from(PACK_BITS))
    codes = np.array(
        data.draw(st.lists(st.integers(0, 2**bits - 1), max_size=300)), np.uint16 if bits > 8 else np.uint8
    )
    packed = pack_codes(codes, bits)
    assert packed == reference_pack(codes, bits)
    np.testing.assert_array_equal(unpack_codes(packed, bits, codes.size), codes)


@pytest.mark.parametrize("bits", (2, 3, 4))
def test_codes_too_wide_for_the_width_are_refused(bits):
    with pytest.raises(QcoreError, match=f"does not fit in {bits} bits"):
        pack_codes(np.array([0, 2**bits], dtype=np.uint8), bits)
