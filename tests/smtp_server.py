"""Real SMTP servers on loopback (aiosmtpd) for the outreach tests: one that records what it
accepts, and faulty ones that take the message and then never confirm it, or stall at a step."""

from __future__ import annotations

import asyncio
import email
import socket
import threading
from email.message import EmailMessage
from email.policy import default as default_policy

from aiosmtpd.controller import Controller


class Recorder:
    """An SMTP handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001 - aiosmtpd's signature
        with self.lock:
            self.messages.append(email.message_from_bytes(envelope.content, policy=default_policy))
        return "250 Message accepted for delivery"


class DropAfterData(Recorder):
    """Receives the whole message (and keeps it: a real server may well deliver it), then drops
    the connection without the final reply."""

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001
        await super().handle_DATA(server, session, envelope)
        server.transport.abort()
        return "250 Message accepted for delivery"  # never reaches the client


class Stall(Recorder):
    """Holds every client at one step until `release()`: "rcpt" (before DATA: no content has come
    yet) or "data" (the content has arrived and is kept; the final reply waits). `reached` is set
    once a client is held there."""

    def __init__(self, at: str) -> None:
        super().__init__()
        assert at in ("rcpt", "data")
        self.at = at
        self.reached = threading.Event()
        self.released = threading.Event()

    def release(self) -> None:
        self.released.set()

    async def _hold(self) -> None:
        self.reached.set()
        while not self.released.is_set():
            await asyncio.sleep(0.02)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:  # noqa: ANN001
        if self.at == "rcpt":
            await self._hold()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001
        reply = await super().handle_DATA(server, session, envelope)
        if self.at == "data":
            await self._hold()
        return reply


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_smtp(port: int, handler: Recorder | None = None) -> tuple[Controller, Recorder]:
    handler = handler if handler is not None else Recorder()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, handler
