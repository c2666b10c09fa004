"""A few seconds' memory of public tracking answers.

Recipients refresh the tracking page, and the same codes are asked for again and again; the
public answer (status and dates, nothing personal) is kept per tracking code for
``SHIPPING_TRACKING_CACHE_SECONDS`` (default 2 s). A status change made by this process
forgets the code at once; another process's change shows within the cache time. Answers that
include the recipient's city and events (postcode given) are never cached, and neither are
unknown codes.
"""

from __future__ import annotations

from libs.common.auth import TtlCache
from services.shipping_api.tracking.schemas import TrackingRead


class TrackingCache:
    """Answers are kept as the JSON bytes sent, so a hit costs no serialisation either."""

    def __init__(self, *, ttl_seconds: float, max_entries: int = 50_000) -> None:
        self.enabled = ttl_seconds > 0
        self._entries: TtlCache[str, bytes] = TtlCache(
            ttl_seconds=max(ttl_seconds, 0.001), max_entries=max_entries
        )

    def get(self, tracking_code: str) -> bytes | None:
        if not self.enabled:
            return None
        _, body = self._entries.get(tracking_code)
        return body

    def put(self, view: TrackingRead) -> None:
        if self.enabled and not view.postcode_verified:
            self._entries.set(view.tracking_code, view.model_dump_json().encode())

    def forget(self, tracking_code: str) -> None:
        self._entries.pop(tracking_code)
