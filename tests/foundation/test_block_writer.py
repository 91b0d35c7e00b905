"""Big files written in aligned blocks by a thread (O_DIRECT where the filesystem allows it)."""
import fcntl
import hashlib
import os
import resource
import signal

import pytest

from portal.files import block_writer
from portal.files.block_writer import ALIGN, BLOCK, write_new_file


def pieces(total: int, sizes=(1, 4096, 3 * 1024 * 1024 + 7, 0, BLOCK + 1, 65536)):
    """`total` bytes in chunks of uneven sizes (empty ones, ones bigger than a block), each
    chunk's bytes different."""
    made, i = 0, 0
    while made < total:
        n = min(sizes[i % len(sizes)], total - made)
        yield bytes([i % 251]) * n
        made, i = made + n, i + 1


@pytest.mark.parametrize("total", [0, 10, BLOCK - 1, BLOCK, 2 * BLOCK + 12345, 3 * BLOCK + ALIGN])
def test_the_file_holds_every_byte_and_the_digest_sees_them(tmp_path, total):
    path = tmp_path / "out.bin"
    digest = hashlib.sha256()
    assert write_new_file(str(path), pieces(total), digest=digest) == total
    expected = b"".join(pieces(total))
    assert path.read_bytes() == expected  # the last block's padding truncated away
    assert digest.hexdigest() == hashlib.sha256(expected).hexdigest()


def test_a_big_file_bypasses_the_page_cache_where_the_filesystem_allows_it(tmp_path):
    fd, direct = block_writer._open_for_blocks(str(tmp_path / "probe"), True)
    try:
        if not direct:
            pytest.skip("no O_DIRECT on this filesystem: the page-cache path is what runs")
        assert fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT
    finally:
        os.close(fd)
    fd, direct = block_writer._open_for_blocks(str(tmp_path / "cached"), False)
    os.close(fd)
    assert not direct


def test_through_the_page_cache_too(tmp_path):
    # What a filesystem without direct I/O gets (the fallback of _open_for_blocks).
    total = 2 * BLOCK + 999
    digest = hashlib.sha256()
    assert write_new_file(str(tmp_path / "out.bin"), pieces(total), digest=digest, direct=False) == total
    expected = b"".join(pieces(total))
    assert (tmp_path / "out.bin").read_bytes() == expected
    assert digest.hexdigest() == hashlib.sha256(expected).hexdigest()


def test_an_existing_file_is_never_overwritten(tmp_path):
    path = tmp_path / "there.bin"
    path.write_bytes(b"keep")
    for total in (3, 2 * BLOCK):
        with pytest.raises(FileExistsError):
            write_new_file(str(path), pieces(total))
    assert path.read_bytes() == b"keep"


def test_an_error_of_the_chunks_stops_the_writer_and_propagates(tmp_path):
    def failing():
        yield from pieces(3 * BLOCK)
        raise ValueError("source went wrong")

    with pytest.raises(ValueError, match="source went wrong"):
        write_new_file(str(tmp_path / "out.bin"), failing())


def test_a_write_error_of_the_thread_reaches_the_caller(tmp_path):
    # A real failing write: the file size limit (EFBIG instead of the signal).
    previous_signal = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (2 * BLOCK, hard))
    try:
        with pytest.raises(OSError) as raised:
            write_new_file(str(tmp_path / "out.bin"), pieces(8 * BLOCK))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous_signal)
    assert raised.value.errno == 27  # EFBIG
