import io

import pytest

from portal.files.ranges import ShortRead, read_range


def test_reads_exactly_the_range_in_chunks_and_closes_the_file():
    handle = io.BytesIO(bytes(range(256)) * 40)
    chunks = list(read_range(handle, 100, 5000, chunk_size=1024))
    assert b"".join(chunks) == (bytes(range(256)) * 40)[100:5100]
    assert max(map(len, chunks)) == 1024
    assert handle.closed


def test_a_file_shorter_than_recorded_aborts_instead_of_sending_a_short_body():
    handle = io.BytesIO(b"x" * 10)
    stream = read_range(handle, 0, 20, chunk_size=4)
    received = b""
    with pytest.raises(ShortRead):
        for chunk in stream:
            received += chunk
    assert received == b"x" * 10 and handle.closed
