"""Answers sent before routing, for the few hot paths whose routed cost is mostly FastAPI's and
the ORM's own (docs/performance.md).

A subclass names its ``method`` and path ``prefix`` and answers in
:meth:`PreRoutingAnswers.answer`; it runs after the request log and the API-wide checks
(``ServiceDefinition.middleware``), so what it answers is logged, rate-limited and labelled like
a routed answer. Whatever it does not answer (it returns ``False``) goes on to the route, with
the request's body handed over again when it was read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class PreRoutingAnswers:
    method: ClassVar[str] = "GET"
    """Only requests with this method and without a query string are offered."""
    prefix: ClassVar[str]
    """... and only under this path."""
    route: ClassVar[BaseRoute]
    """The route that would have answered: the metrics label the answer with its template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == self.method
            and not scope["query_string"]
            and scope["path"].startswith(self.prefix)
        ):
            body: bytes | None = b""
            if self.method != "GET":
                body, receive = await buffer_body(receive)
            if body is not None and await self.answer(scope, body, send):
                return
        await self.app(scope, receive, send)

    async def answer(self, scope: Scope, body: bytes, send: Send) -> bool:
        """Send the answer and return ``True``, or send nothing and return ``False``.

        ``body``: the request's whole body (empty for ``GET``)."""
        raise NotImplementedError

    async def send_json(
        self,
        scope: Scope,
        send: Send,
        body: bytes,
        *,
        status: int = 200,
        headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        """``status`` with ``body``, JSON rendered already."""
        scope["route"] = self.route
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    *headers,
                    (b"content-length", str(len(body)).encode()),
                    (b"content-type", b"application/json"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


async def buffer_body(receive: Receive) -> tuple[bytes | None, Receive]:
    """The request's whole body (``None`` when the client left before sending all of it) and a
    ``receive`` that hands the same messages to whoever reads the request next."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None, replaying(b"".join(chunks), receive, message)
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    return body, replaying(body, receive)


def replaying(body: bytes, receive: Receive, pending: Message | None = None) -> Receive:
    """A ``receive`` that hands the buffered body over once, then the original's messages."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            if pending is not None:
                return pending
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
