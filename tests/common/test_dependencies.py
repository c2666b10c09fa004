"""Every dependency of every route is async: FastAPI runs a plain ``def`` dependency on the
thread pool, a hop that costs more than most of our dependencies do (measured on the hot
tracking and shipment routes)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from services.identity_api.app import create_app as create_identity
from services.privacy_api.app import create_app as create_privacy
from services.shipping_api.app import create_app as create_shipping


def _calls(dependant: Dependant) -> Iterator[Any]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)


def _is_async(call: Any) -> bool:
    if inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call):
        return True
    # Instances (security schemes) are async when their __call__ is.
    return not inspect.isfunction(call) and inspect.iscoroutinefunction(type(call).__call__)


@pytest.mark.parametrize("create_app", [create_identity, create_shipping, create_privacy])
def test_no_route_depends_on_a_sync_function(create_app: Any) -> None:
    app = create_app()
    routes = [
        context.original_route
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
    ]
    assert len(routes) > 10
    sync = {
        f"{route.path}: {getattr(call, '__qualname__', call)}"
        for route in routes
        for call in _calls(route.dependant)
        if not _is_async(call)
    }
    assert not sync
