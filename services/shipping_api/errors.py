"""Domain errors of shipping_api; the shared handlers turn them into problem responses."""

from __future__ import annotations

from libs.common.errors import Conflict, NotFound


class ShipmentNotFound(NotFound):
    slug = "shipment-not-found"

    def __init__(self, detail: str = "No shipment with this id.") -> None:
        super().__init__(detail)


class SupportNoteNotFound(NotFound):
    slug = "support-note-not-found"

    def __init__(self) -> None:
        super().__init__("No support note with this id on this shipment.")


class IllegalTransition(Conflict):
    slug = "illegal-transition"
    title = "Illegal status transition"


class RecipientErased(Conflict):
    slug = "recipient-erased"
    title = "The recipient's data has been erased"


class WebhookEndpointNotFound(NotFound):
    slug = "webhook-endpoint-not-found"

    def __init__(self) -> None:
        super().__init__("No webhook endpoint with this id.")


class WebhookDeliveryNotFound(NotFound):
    slug = "webhook-delivery-not-found"

    def __init__(self) -> None:
        super().__init__("No delivery with this id in this endpoint's log.")


class NotRedeliverable(Conflict):
    slug = "not-redeliverable"
    title = "The delivery cannot be sent again"


class EndpointNotPingable(Conflict):
    slug = "not-pingable"
    title = "The endpoint cannot be pinged now"


class ReplayUnavailable(Conflict):
    """A retry under an ``Idempotency-Key`` whose first answer held a secret that is no longer
    the one in force (decision 0202)."""

    slug = "replay-unavailable"
    title = "The first answer under this Idempotency-Key can no longer be given"
