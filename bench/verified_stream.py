"""A baseline for bench/zip_bench.py: the least a CRC-checked stream through WSGI can do.

    gunicorn --chdir ROOT bench.verified_stream:application   (VERIFIED_STREAM_PATHS=<list file>)

GET answers the files named in the list (one path a line) one after the other, read
BIG_ENTRY_READ bytes at a time with their CRC-32 computed on the way, as the order zip reads its
big entries, but with no
Django, no zip records, no bookkeeping. Next to the single file (sent by sendfile, never read
by the server) it shows what reading and checking every byte costs on this machine; next to
the order zip, what the portal adds to that.
"""
from __future__ import annotations

import os

from portal.files.crc import crc32
from portal.files.zip_layout import BIG_ENTRY_READ

CHUNK = BIG_ENTRY_READ  # as the order zip reads a big entry


def _paths() -> list[str]:
    with open(os.environ["VERIFIED_STREAM_PATHS"]) as listing:
        return [line.rstrip("\n") for line in listing if line.strip()]


def application(environ, start_response):
    paths = _paths()
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(sum(os.path.getsize(path) for path in paths)))])
    return _stream(paths)


def _stream(paths: list[str]):
    for path in paths:
        crc = 0
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                crc = crc32(chunk, crc)  # the zip's work per byte; the value is not needed
                yield chunk
