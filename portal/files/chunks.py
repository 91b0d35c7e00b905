"""A read-only file over generated chunks: what an upload or a zip entry reads from."""
from __future__ import annotations

import io
from typing import Iterable

SKIP_SIZE = 1024 * 1024


class ChunkReader(io.RawIOBase):
    """Reads an iterable of bytes as a file; empty chunks are skipped, seeks go forward only."""

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks, self._pending, self._pos = iter(chunks), b"", 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = chunk
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        self._pos += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence != io.SEEK_SET or offset < self._pos:
            raise io.UnsupportedOperation("forward seeks only")
        while self._pos < offset and self.read(min(offset - self._pos, SKIP_SIZE)):
            pass
        return self._pos
