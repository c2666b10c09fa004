"""Answers sent before routing, for the few hot ``GET`` paths whose routed cost is mostly
FastAPI's own (docs/performance.md).

A subclass names its path ``prefix`` and answers in :meth:`PreRoutingAnswers.answer`; it runs
after the request log and the API-wide checks (``ServiceDefinition.middleware``), so what it
answers is logged, rate-limited and labelled like a routed answer. Whatever it does not answer
(it returns ``False``) goes on to the route.
"""

from __future__ import annotations

from typing import ClassVar

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send


class PreRoutingAnswers:
    prefix: ClassVar[str]
    """Only ``GET`` requests without a query string under this path are offered."""
    route: ClassVar[BaseRoute]
    """The route that would have answered: the metrics label the answer with its template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and not scope["query_string"]
            and scope["path"].startswith(self.prefix)
            and await self.answer(scope, send)
        ):
            return
        await self.app(scope, receive, send)

    async def answer(self, scope: Scope, send: Send) -> bool:
        """Send the answer and return ``True``, or send nothing and return ``False``."""
        raise NotImplementedError

    async def send_json(self, scope: Scope, send: Send, body: bytes) -> None:
        """``200`` with ``body``, JSON rendered already."""
        scope["route"] = self.route
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", str(len(body)).encode()),
                    (b"content-type", b"application/json"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
