"""How a worker sends: the sender threads of a channel with several sessions, one send
guarded against an adapter that raises, and the garbage collector kept to young objects
during a chunk (``ccm.runs.deliver``)."""
from __future__ import annotations

import gc
import logging
import queue
import threading
from typing import Any

from channels import Channel, DeliveryResult, Outbound

log = logging.getLogger("ccm.runs.deliver")  # the worker's log, as before the split


class Senders:
    """Threads that send on a channel's sessions, one send each at a time; every send
    comes back on ``done`` with its result, in the order they finish."""

    def __init__(self, channel: Channel, count: int, done: queue.SimpleQueue) -> None:
        self.todo: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.threads = [
            threading.Thread(target=self._work, args=(channel, done), name=f"send-{channel.name}-{n}", daemon=True)
            for n in range(count)
        ]
        for thread in self.threads:
            thread.start()

    def _work(self, channel: Channel, done: queue.SimpleQueue) -> None:
        while (sending := self.todo.get()) is not None:
            try:
                sending.result = send_one(channel, sending.composed.outbound, sending.message.id)
            except BaseException as exc:  # never leave the worker waiting for a send that died
                sending.result = DeliveryResult("transient", detail=f"channel error ({type(exc).__name__})")
            done.put(sending)
            del sending  # an idle thread holds no message (it would outlive the chunk's collection)

    def stop(self) -> None:
        for _ in self.threads:
            self.todo.put(None)
        for thread in self.threads:
            thread.join()


class YoungCollections:
    """The cyclic garbage collector during a chunk: after each message on what that message
    left (generation 0), at the end on what the chunk left (generation 1), never on its own.

    Left alone, it promotes the chunk's records (alive through many automatic collections)
    to the oldest generation, which then fills up and is walked whole every 150 or so
    e-mails: every object of the process, about 90 ms each time, an eighth of the time of
    an e-mail run. Rendering PDFs keeps it off in the same way (``documents.pdf``)."""

    def __enter__(self) -> YoungCollections:
        self.enabled = gc.isenabled()
        gc.disable()
        return self

    def after_message(self) -> None:
        if self.enabled:
            gc.collect(0)

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            gc.enable()
            gc.collect(1)


def send_one(channel: Channel, outbound: Outbound, message_id: int) -> DeliveryResult:
    try:
        return channel.send(outbound)
    except Exception as exc:  # adapters must not raise; if one does, retry later like a transient failure
        log.error("message %s: channel %s raised %s", message_id, channel.name, type(exc).__name__, exc_info=True)
        return DeliveryResult("transient", detail=f"channel error ({type(exc).__name__})")
