"""The embedded broker never hands a consumer a half-written message (kombu's own filesystem
transport does: the consumer decodes an empty file and the task is lost)."""
from __future__ import annotations

import threading
from queue import Empty

from kombu import Connection

from portal import broker
from portal.celery import app


def test_filesystem_urls_use_the_atomic_transport():
    assert app.main == "orderly"  # importing the Celery app installs it
    assert Connection("filesystem://").transport.__class__ is broker.Transport


def test_every_message_put_while_a_consumer_polls_arrives_whole(tmp_path):
    folders = {"data_folder_in": str(tmp_path), "data_folder_out": str(tmp_path),
               "processed_folder": str(tmp_path / "done"), "control_folder": str(tmp_path / "control"),
               "store_processed": False, "polling_interval": 0.001}
    count, received, errors = 1000, [], []
    body = "x" * 20000  # big enough that a write is not one instant
    done = threading.Event()

    def consume():
        with Connection("filesystem://", transport_options=folders) as connection:
            queue = connection.SimpleQueue("race")
            while len(received) < count and not done.is_set():
                try:
                    message = queue.get(timeout=0.05)
                except Empty:
                    continue
                except Exception as exc:  # a half-written message (JSONDecodeError) is the bug
                    errors.append(exc)
                    continue
                received.append(message.payload["n"])
                assert message.payload["body"] == body
                message.ack()

    with Connection("filesystem://", transport_options=folders) as connection:
        connection.SimpleQueue("race")  # declared (bound) before anyone polls or sends
    consumer = threading.Thread(target=consume)
    consumer.start()
    try:
        with Connection("filesystem://", transport_options=folders) as connection:
            queue = connection.SimpleQueue("race")
            for n in range(count):
                queue.put({"n": n, "body": body})
        consumer.join(timeout=60)
    finally:
        done.set()
        consumer.join()
    assert errors == []
    assert sorted(received) == list(range(count))
    assert not list(tmp_path.glob(".*.part"))
