"""Renderers of the download endpoints (order files, zips, metalinks, delivery artifacts)."""
from __future__ import annotations

import json

from rest_framework.renderers import BaseRenderer, JSONRenderer


class AnyMediaRenderer(BaseRenderer):
    """Lets any `Accept` (application/zip, metalink, octet-stream...) through negotiation; the
    views stream their bodies themselves, so this only ever renders error bodies (as JSON)."""

    media_type = "*/*"
    format = "any"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return b"" if data is None else json.dumps(data).encode("utf-8")


DOWNLOAD_RENDERERS = [JSONRenderer, AnyMediaRenderer]
