"""CRC-32 (zip's polynomial, the same values as `zlib.crc32`) at memory speed.

Every zip entry's data is CRC-checked while it streams (a file changed on disk must abort the
download, not corrupt it), so for big files the check is the zip's main CPU cost: zlib's
crc32 runs at ~2.5 GB/s here, zlib-ng's SIMD one at ~12 GB/s.
"""
from zlib_ng.zlib_ng import crc32

__all__ = ["crc32"]
