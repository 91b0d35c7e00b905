"""The embedded broker (`filesystem://`, no server): kombu's filesystem transport, with each
message written whole before it can be seen.

kombu 5.7 creates a message file under its final name and then writes it: a consumer polling
at that moment moves the empty or half-written file away, fails to decode it (JSONDecodeError)
and the task is lost. Here a message is written under a name the consumer ignores (a leading
dot: its "queue" part never matches) and renamed into place, which is atomic on one filesystem.
"""
from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".{name}.part")
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel


def install() -> None:
    """`filesystem://` URLs use this transport (kombu resolves schemes through its alias table)."""
    TRANSPORT_ALIASES["filesystem"] = "portal.broker:Transport"
