"""CRC-16/CCITT-FALSE, the check value of every reader frame.

Parameters (Rocksoft model): width 16, poly 0x1021, init 0xFFFF, refin false, refout false, xorout 0x0000;
check value of ``b"123456789"`` is 0x29B1. ``binascii.crc_hqx`` computes exactly this polynomial unreflected,
in C, so the hot path uses it; ``crc16_reference`` is the bit-by-bit definition the tests compare against.
"""

from __future__ import annotations

import binascii

CRC_INIT = 0xFFFF
CRC_POLY = 0x1021


def crc16_ccitt_false(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/CCITT-FALSE of ``data``."""
    return binascii.crc_hqx(data, CRC_INIT)


def crc16_reference(data: bytes | bytearray | memoryview) -> int:
    """The same CRC computed one bit at a time, straight from the definition (slow; for tests and docs)."""
    crc = CRC_INIT
    for byte in bytes(data):
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ CRC_POLY) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc
