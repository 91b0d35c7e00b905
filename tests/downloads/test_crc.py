"""The fast CRC-32 gives zlib's values: zip headers and the catalog's recorded CRCs agree."""
import os
import zlib

from portal.files.crc import crc32


def test_fast_crc32_equals_zlib_whole_and_chained():
    data = os.urandom(3 * 1024 * 1024 + 17)
    assert crc32(b"") == zlib.crc32(b"") == 0
    assert crc32(data) == zlib.crc32(data)
    chained = 0
    for start in range(0, len(data), 65_537):
        chained = crc32(data[start:start + 65_537], chained)
    assert chained == zlib.crc32(data)
    assert crc32(memoryview(data)[5:1000], 12345) == zlib.crc32(data[5:1000], 12345)
