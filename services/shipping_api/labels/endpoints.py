"""Labels: one shipment's (``GET /v1/shipments/{id}/label``) or many in one document
(``POST /v1/labels``)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from libs.common.auth import Principal, Scope, require_account
from libs.common.clock import ClockDep
from libs.common.db import SessionDep
from libs.common.errors import problem_responses
from services.shipping_api.dependencies import OutboxesDep
from services.shipping_api.labels.model import Label
from services.shipping_api.labels.render_pdf import render_pdf
from services.shipping_api.labels.render_zpl import render_zpl
from services.shipping_api.labels.schemas import LabelBatchRequest, LabelFormat
from services.shipping_api.labels.sender import SenderDirectory
from services.shipping_api.labels.service import print_labels
from services.shipping_api.shipments.access import key_mode

router = APIRouter(tags=["labels"])

Printer = Annotated[Principal, Depends(require_account(Scope.SHIPMENTS_WRITE))]

LABEL_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The label(s): an A6 PDF, or ZPL for thermal printers.",
        "content": {
            "application/pdf": {"schema": {"type": "string", "format": "binary"}},
            "application/zpl": {"schema": {"type": "string"}},
        },
    },
    **problem_responses(401, 403, 404, 409, 422, 502, 503, 504),
}


def _senders(request: Request) -> SenderDirectory:
    directory: SenderDirectory = request.app.state.senders
    return directory


async def _render(labels: list[Label], label_format: LabelFormat, filename: str) -> Response:
    """Rendered in a worker thread: a batch of 500 shipments' labels takes a good part of a
    second of CPU, which on the event loop would hold up every other request of the process."""
    if label_format is LabelFormat.ZPL:
        return Response(
            await run_in_threadpool(render_zpl, labels),
            media_type="application/zpl",
            headers={"Content-Disposition": f'attachment; filename="{filename}.zpl"'},
        )
    return Response(
        await run_in_threadpool(render_pdf, labels),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{filename}.pdf"'},
    )


@router.get(
    "/v1/shipments/{shipment_id}/label",
    response_class=Response,
    responses=LABEL_RESPONSES,
    summary="The shipment's label",
    description=(
        "One A6 page (or ZPL label) per parcel with sender, recipient, carrier, service, a "
        "Code 128 barcode of the tracking code and the parcel number (i/n). The first print "
        "moves the shipment from `created` to `label_printed`. `502`/`503` when the account's "
        "sender details cannot be fetched."
    ),
)
async def shipment_label(
    shipment_id: uuid.UUID,
    request: Request,
    principal: Printer,
    session: SessionDep,
    clock: ClockDep,
    outboxes: OutboxesDep,
    format: Annotated[LabelFormat, Query(description="`pdf` or `zpl`.")] = LabelFormat.PDF,
) -> Response:
    assert principal.account_id is not None  # noqa: S101
    labels = await print_labels(
        session,
        [shipment_id],
        principal.account_id,
        mode=key_mode(principal),
        senders=_senders(request),
        now=clock.now(),
        outboxes=outboxes,
    )
    return await _render(labels, format, labels[0].tracking_code)


@router.post(
    "/v1/labels",
    response_class=Response,
    responses=LABEL_RESPONSES,
    summary="Labels of many shipments in one document",
    description="For batch printing: one PDF (or ZPL stream) with every parcel's label.",
)
async def batch_labels(
    body: LabelBatchRequest,
    request: Request,
    principal: Printer,
    session: SessionDep,
    clock: ClockDep,
    outboxes: OutboxesDep,
) -> Response:
    assert principal.account_id is not None  # noqa: S101
    labels = await print_labels(
        session,
        body.shipment_ids,
        principal.account_id,
        mode=key_mode(principal),
        senders=_senders(request),
        now=clock.now(),
        outboxes=outboxes,
    )
    return await _render(labels, body.format, f"labels-{clock.now():%Y%m%d-%H%M%S}")
