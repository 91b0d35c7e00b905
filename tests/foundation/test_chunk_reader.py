"""The one reader over generated chunks (zip SHA256SUMS entries, S3 uploads)."""
import io

import pytest

from portal.files.chunks import ChunkReader


def test_reads_every_byte_across_empty_chunks():
    # An empty chunk in the middle is not the end of the stream.
    reader = ChunkReader([b"ab", b"", b"cde", b"", b"f"])
    assert reader.read() == b"abcdef"


def test_forward_seek_skips_and_backward_seek_is_refused():
    reader = ChunkReader(iter([b"0123", b"4567", b"89"]))
    assert reader.seek(5) == 5
    assert reader.read(3) == b"567"
    with pytest.raises(io.UnsupportedOperation):
        reader.seek(1)
