"""schemathesis hooks of the contract runs (loaded through ``schemathesis.toml``).

Carriers authenticate pushed events with an HMAC signature of the raw body (decision 0205);
the fuzzer signs each body with the development installation's carrier secret, so the route is
exercised past its signature check instead of answering 401 to everything.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis

from services.shipping_api.carriers.signatures import SIGNATURE_HEADER, sign

CARRIER_EVENTS = "/v1/carriers/{carrier}/events"


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Sign the body exactly as the transport will send it (``json.dumps`` of the body)."""
    if case.operation.path != CARRIER_EVENTS or case.media_type != "application/json":
        return
    try:
        raw = json.dumps(case.body, allow_nan=False).encode()
    except (TypeError, ValueError):
        return
    carrier = str((case.path_parameters or {}).get("carrier", ""))
    case.headers = {
        **(case.headers or {}),
        SIGNATURE_HEADER: sign(f"dev-only-carrier-{carrier}", raw),
    }
