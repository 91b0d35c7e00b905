"""Metalink documents listing downloadable files with their sizes and hashes.

Metalink 3.0 (`application/metalink+xml`, namespace http://www.metalinker.org/) is what
REGARDS clients expect; Metalink 4 (RFC 5854, `application/metalink4+xml`) is what aria2
and other current download managers prefer. Both are produced as a stream of text chunks,
so an order of a hundred thousand files never sits in memory as a tree.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from email.utils import format_datetime
from typing import Iterable, Iterator
from urllib.parse import urlsplit
from xml.sax.saxutils import escape, quoteattr

from portal.dates import iso_utc

METALINK3_CONTENT_TYPE = "application/metalink+xml"
METALINK4_CONTENT_TYPE = "application/metalink4+xml"
METALINK3_NS = "http://www.metalinker.org/"
METALINK4_NS = "urn:ietf:params:xml:ns:metalink"
GENERATOR = "Orderly"


@dataclass(frozen=True)
class MetalinkFile:
    name: str                 # unique within the document (see names.unique_names)
    size: int
    md5: str
    sha256: str
    urls: tuple[str, ...] = field(default_factory=tuple)
    mime_type: str = ""
    identity: str = ""        # e.g. the data object's URN


def _url_type(url: str) -> str:
    scheme = urlsplit(url).scheme.lower()
    return scheme if scheme in ("http", "https", "ftp", "ftps") else "http"


def _text(tag: str, value) -> str:
    return f"<{tag}>{escape(str(value))}</{tag}>"


def metalink3_chunks(files: Iterable[MetalinkFile], *, published: dt.datetime) -> Iterator[str]:
    """Metalink 3.0: `<verification>` holds the md5 and sha256 hashes, `<resources>` the URLs."""
    yield '<?xml version="1.0" encoding="UTF-8"?>\n'
    yield (f'<metalink version="3.0" xmlns="{METALINK3_NS}" type="static" '
           f'generator="{GENERATOR}" pubdate={quoteattr(format_datetime(published, usegmt=True))}>\n')
    yield "  <files>\n"
    for f in files:
        parts = [f"    <file name={quoteattr(f.name)}>"]
        if f.identity:
            parts.append(_text("identity", f.identity))
        parts.append(_text("size", f.size))
        if f.mime_type:
            parts.append(_text("mimetype", f.mime_type))
        hashes = []
        if f.md5:
            hashes.append(f'<hash type="md5">{escape(f.md5)}</hash>')
        if f.sha256:
            hashes.append(f'<hash type="sha256">{escape(f.sha256)}</hash>')
        if hashes:
            parts.append("<verification>" + "".join(hashes) + "</verification>")
        urls = "".join(f'<url type="{_url_type(u)}" preference="{100 - i if i < 100 else 1}">{escape(u)}</url>'
                       for i, u in enumerate(f.urls))
        parts.append(f"<resources>{urls}</resources>")
        yield "".join(parts) + "</file>\n"
    yield "  </files>\n</metalink>\n"


def _iso(moment: dt.datetime) -> str:
    return iso_utc(moment, timespec="seconds")


def metalink4_chunks(files: Iterable[MetalinkFile], *, published: dt.datetime) -> Iterator[str]:
    """Metalink 4 (RFC 5854): `<hash type="sha-256">` and `md5`, URLs with priorities."""
    yield '<?xml version="1.0" encoding="UTF-8"?>\n'
    yield f'<metalink xmlns="{METALINK4_NS}">\n'
    yield f"  {_text('generator', GENERATOR)}\n  {_text('published', _iso(published))}\n"
    for f in files:
        parts = [f"  <file name={quoteattr(f.name)}>"]
        if f.identity:
            parts.append(_text("identity", f.identity))
        parts.append(_text("size", f.size))
        if f.sha256:
            parts.append(f'<hash type="sha-256">{escape(f.sha256)}</hash>')
        if f.md5:
            parts.append(f'<hash type="md5">{escape(f.md5)}</hash>')
        parts.extend(f'<url priority="{i + 1}">{escape(u)}</url>' for i, u in enumerate(f.urls))
        yield "".join(parts) + "</file>\n"
    yield "</metalink>\n"


def metalink_chunks(files: Iterable[MetalinkFile], *, version: int, published: dt.datetime) -> Iterator[str]:
    builder = metalink4_chunks if version == 4 else metalink3_chunks
    return builder(files, published=published)


def metalink_bytes(files: Iterable[MetalinkFile], *, version: int, published: dt.datetime) -> bytes:
    return "".join(metalink_chunks(files, version=version, published=published)).encode("utf-8")
