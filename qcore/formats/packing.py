"""Bit packing of integer codes: a byte-level contract.

Bit order: codes form one LSB-first bit stream. Code i of a flattened (row-major) chunk occupies
stream bits [bits*i, bits*i + bits), and stream bit k is bit (k % 8) of byte k // 8. So for
2-bit codes byte j holds codes 4j..4j+3 with code 4j in its two lowest bits; 3-bit codes pack
densely (8 codes in 3 bytes) and only the last byte of a chunk may carry unused high bits, which
are zero. The packed length is ceil(bits * n / 8) bytes. Any width from 1 to 16 bits follows the same stream
(16-bit codes are little-endian words); codes wider than 8 bits unpack as uint16.
"""

from __future__ import annotations

import numpy as np

from ..errors import QcoreError

PACK_BITS = tuple(range(1, 17))  # every width the stream holds: affine codes, sign bits, 16-bit lattice codes
FAST = (2, 3, 4, 8)  # widths with a dedicated path (the others take the generic bit-matrix path)
BLOCK = 1 << 20  # codes per block of the generic path (its bit matrix is bits x BLOCK bytes)
BIT_ORDER = "lsb-first bit stream, row-major codes"


def packed_nbytes(n: int, bits: int) -> int:
    """Bytes that n codes of `bits` bits take packed."""
    return (bits * n + 7) // 8


def _check_bits(bits: int) -> None:
    if bits not in PACK_BITS:
        raise QcoreError(f"cannot pack {bits}-bit codes; supported widths are {', '.join(map(str, PACK_BITS))}")


def pack_codes(codes: np.ndarray, bits: int) -> bytes:
    """Pack integer codes (any shape, flattened row-major) into bytes. Codes must be in [0, 2**bits)."""
    _check_bits(bits)
    c = np.asarray(codes).reshape(-1)
    n = c.size
    if n and (int(c.max()) >= 2**bits or int(c.min()) < 0):
        raise QcoreError(f"code {int(c.max()) if int(c.min()) >= 0 else int(c.min())} does not fit in {bits} bits")
    if bits not in FAST:
        return _pack_generic(c, bits)
    c = np.ascontiguousarray(c, dtype=np.uint8)
    if bits == 8:
        return c.tobytes()
    per = 8 if bits == 3 else 8 // bits  # codes per packing unit (3 bytes for 3-bit, 1 byte else)
    pad = (-n) % per
    if pad:
        c = np.concatenate([c, np.zeros(pad, np.uint8)])
    if bits == 3:
        u = c.reshape(-1, 8).astype(np.uint32)  # (n/8, 8)
        word = np.zeros(u.shape[0], np.uint32)
        for j in range(8):
            word |= u[:, j] << (3 * j)
        out = np.stack([(word >> s).astype(np.uint8) for s in (0, 8, 16)], axis=1)  # (n/8, 3)
    else:
        u = c.reshape(-1, per)  # (n/per, per)
        out = np.zeros(u.shape[0], np.uint8)
        for j in range(per):
            out |= u[:, j] << np.uint8(bits * j)
    return out.reshape(-1)[: packed_nbytes(n, bits)].tobytes()


def unpack_codes(data: bytes, bits: int, n: int) -> np.ndarray:
    """Inverse of pack_codes: the first n codes of the stream as a flat uint8 array (uint16 above 8 bits)."""
    _check_bits(bits)
    if len(data) != packed_nbytes(n, bits):
        raise QcoreError(
            f"packed codes have {len(data)} bytes, expected {packed_nbytes(n, bits)} for {n} {bits}-bit codes"
        )
    b = np.frombuffer(data, dtype=np.uint8)
    if bits not in FAST:
        return _unpack_generic(b, bits, n)
    if bits == 8:
        return b.copy()
    mask = np.uint8(2**bits - 1)
    if bits == 3:
        b = np.concatenate([b, np.zeros((-b.size) % 3, np.uint8)]).reshape(-1, 3).astype(np.uint32)  # (n/8, 3)
        word = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        out = np.stack([(word >> (3 * j)) & 7 for j in range(8)], axis=1).astype(np.uint8)  # (n/8, 8)
    else:
        per = 8 // bits
        out = np.stack([(b >> np.uint8(bits * j)) & mask for j in range(per)], axis=1)  # (nbytes, per)
    return out.reshape(-1)[:n]


def _pack_generic(c: np.ndarray, bits: int) -> bytes:
    """The stream for any width: each code's bits, LSB first, then np.packbits in little bit order."""
    if bits == 16:
        return np.ascontiguousarray(c, dtype="<u2").tobytes()
    weights = np.arange(bits, dtype=np.uint32)
    parts = []
    for i0 in range(0, c.size, BLOCK):
        block = c[i0 : i0 + BLOCK].astype(np.uint32)
        matrix = ((block[:, None] >> weights) & 1).astype(np.uint8)  # (block, bits) bit b of each code
        parts.append(matrix.reshape(-1))
    stream = np.concatenate(parts) if parts else np.zeros(0, np.uint8)
    return np.packbits(stream, bitorder="little").tobytes()


def _unpack_generic(b: np.ndarray, bits: int, n: int) -> np.ndarray:
    dtype = np.uint8 if bits <= 8 else np.uint16
    if bits == 16:
        return b.view("<u2")[:n].astype(np.uint16)
    stream = np.unpackbits(b, bitorder="little", count=n * bits).reshape(n, bits)  # (n, bits)
    return (stream.astype(np.uint32) << np.arange(bits, dtype=np.uint32)).sum(1).astype(dtype)
