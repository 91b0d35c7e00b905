"""ONE ranged-file response for every download (order files, order zips, catalog files,
delivery artifacts): Range / If-Range against a strong ETag, 206 with Content-Range, HEAD
without a body, and one 416 body in the convention of the endpoint's protocol."""
from __future__ import annotations

import json
from typing import BinaryIO, Callable, Iterable

from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header

from portal.api.errors import error_body

from .ranges import ByteRange, RangeNotSatisfiable, requested_range

RANGE_NOT_SATISFIABLE = "RANGE_NOT_SATISFIABLE"


def range_not_satisfiable(request, size: int) -> HttpResponse:
    """416 with `Content-Range: bytes */size` and the protocol's error body."""
    body, content_type = error_body(request.path, 416, [RANGE_NOT_SATISFIABLE], RANGE_NOT_SATISFIABLE)
    response = HttpResponse(json.dumps(body), status=416, content_type=content_type)
    response["Content-Range"] = f"bytes */{size}"
    return response


def ranged_file_response(request, *, size: int, etag: str, content_type: str,
                         stream: Callable[[ByteRange | None], Iterable[bytes]],
                         open_whole: Callable[[], BinaryIO] | None = None,
                         filename: str | None = None, disposition: str | None = None,
                         headers: dict[str, str] | None = None) -> HttpResponse:
    """The representation (or the requested range of it) of `size` bytes under `etag`.

    `stream(byte_range)` yields the body (None: all of it); `open_whole()`, when given, opens
    the whole file so the server may use sendfile. HEAD answers the same headers, no body.
    `disposition` is a ready Content-Disposition value; otherwise `filename` makes one.
    """
    try:
        byte_range = requested_range(range_header=request.headers.get("Range"),
                                     if_range=request.headers.get("If-Range"), etag=etag, size=size)
    except RangeNotSatisfiable:
        return range_not_satisfiable(request, size)
    status = 206 if byte_range else 200
    if request.method == "HEAD":
        response = HttpResponse(status=status, content_type=content_type)
    elif byte_range is None and open_whole is not None:
        response = FileResponse(open_whole(), content_type=content_type)
    else:
        response = StreamingHttpResponse(stream(byte_range), status=status, content_type=content_type)
    response["Content-Length"] = str(byte_range.length if byte_range else size)
    if byte_range:
        response["Content-Range"] = byte_range.content_range(size)
    response["ETag"] = etag
    response["Accept-Ranges"] = "bytes"
    if disposition is not None:
        response["Content-Disposition"] = disposition
    elif filename is not None:
        response["Content-Disposition"] = content_disposition_header(True, filename)
    for name, value in (headers or {}).items():
        response[name] = value
    return response
