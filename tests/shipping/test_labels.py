"""Labels: A6 PDF with barcode and parcel i/n, ZPL, batches, the sender from identity."""

from __future__ import annotations

import asyncio
import io
import itertools
import time
import uuid

import pytest
from pypdf import PdfReader

from services.shipping_api.labels import endpoints as label_endpoints
from services.shipping_api.labels.model import Label
from services.shipping_api.labels.render_pdf import render_pdf
from tests.shipping.conftest import Shipping

A6_POINTS = (297.6, 419.5)


def pdf_pages(content: bytes) -> list[str]:
    reader = PdfReader(io.BytesIO(content))
    for page in reader.pages:
        width, height = float(page.mediabox.width), float(page.mediabox.height)
        assert (round(width, 1), round(height, 1)) == A6_POINTS
    return [page.extract_text() for page in reader.pages]


async def test_pdf_label_has_sender_recipient_carrier_barcode_text_and_parcel_numbers(
    shipping: Shipping,
) -> None:
    body = await shipping.create(parcels=2, service="signature")
    response = await shipping.client.get(
        f"/v1/shipments/{body['id']}/label", headers=shipping.headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    pages = pdf_pages(response.content)
    assert len(pages) == 2
    for number, text in enumerate(pages, start=1):
        assert "PostNL" in text
        assert "SIGNATURE" in text
        assert "Webwinkel De Boekenkast B.V." in text  # the sender, from identity
        assert "Coolsingel 40" in text
        assert "Jan Jansen" in text
        assert "3191 EE" in text
        assert body["tracking_code"] in text
        assert f"{number}/2" in text


async def test_printing_moves_created_to_label_printed_once(shipping: Shipping) -> None:
    body = await shipping.create()
    for _ in range(2):
        response = await shipping.client.get(
            f"/v1/shipments/{body['id']}/label?format=pdf", headers=shipping.headers
        )
        assert response.status_code == 200
    events = await shipping.client.get(
        f"/v1/shipments/{body['id']}/events", headers=shipping.headers
    )
    assert [e["status"] for e in events.json()["data"]] == ["created", "label_printed"]


async def test_zpl_label_has_one_label_per_parcel_with_code128(shipping: Shipping) -> None:
    body = await shipping.create(parcels=3, reference="REF^~_1")
    response = await shipping.client.get(
        f"/v1/shipments/{body['id']}/label?format=zpl", headers=shipping.headers
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/zpl")
    zpl = response.text
    assert zpl.count("^XA") == zpl.count("^XZ") == 3
    assert zpl.count(f"^BCN,200,Y,N,N^FD{body['tracking_code']}^FS") == 3
    assert "^FD1/3^FS" in zpl
    assert "^FD3/3^FS" in zpl
    assert "REF_5E_7E_5F1" in zpl  # control characters escaped


async def test_unknown_format_is_422(shipping: Shipping) -> None:
    body = await shipping.create()
    response = await shipping.client.get(
        f"/v1/shipments/{body['id']}/label?format=png", headers=shipping.headers
    )
    assert response.status_code == 422


async def test_batch_labels_make_one_pdf(shipping: Shipping) -> None:
    first = await shipping.create(parcels=2)
    second = await shipping.create()
    response = await shipping.client.post(
        "/v1/labels",
        json={"shipment_ids": [second["id"], first["id"]]},
        headers=shipping.headers,
    )
    assert response.status_code == 200
    pages = pdf_pages(response.content)
    assert len(pages) == 3
    assert second["tracking_code"] in pages[0]
    assert first["tracking_code"] in pages[1]
    assert "2/2" in pages[2]
    for shipment in (first, second):
        listed = await shipping.client.get(
            f"/v1/shipments/{shipment['id']}", headers=shipping.headers
        )
        assert listed.json()["status"] == "label_printed"


async def test_batch_with_another_accounts_shipment_is_404_and_prints_nothing(
    shipping: Shipping,
) -> None:
    mine = await shipping.create()
    other_account, other_headers = shipping.other_account()
    theirs = await shipping.create(headers=other_headers)
    response = await shipping.client.post(
        "/v1/labels",
        json={"shipment_ids": [mine["id"], theirs["id"]]},
        headers=shipping.headers,
    )
    assert response.status_code == 404
    assert (await shipping.stored(mine["id"])).status == "created"
    assert other_account != shipping.account_id


async def test_cancelled_shipment_has_no_label(shipping: Shipping) -> None:
    body = await shipping.create()
    await shipping.client.post(f"/v1/shipments/{body['id']}/cancel", headers=shipping.headers)
    response = await shipping.client.get(
        f"/v1/shipments/{body['id']}/label", headers=shipping.headers
    )
    assert response.status_code == 409


async def test_identity_down_is_503_and_nothing_is_marked_printed(shipping: Shipping) -> None:
    body = await shipping.create()
    shipping.identity.down = True
    response = await shipping.client.get(
        f"/v1/shipments/{body['id']}/label", headers=shipping.headers
    )
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert "identity" in response.json()["detail"]
    assert (await shipping.stored(body["id"])).status == "created"


async def test_unknown_sender_account_is_502(shipping: Shipping) -> None:
    body = await shipping.create()
    shipping.identity.accounts.clear()
    response = await shipping.client.get(
        f"/v1/shipments/{body['id']}/label", headers=shipping.headers
    )
    assert response.status_code == 502


async def test_sender_is_cached_briefly(shipping: Shipping) -> None:
    ids = [(await shipping.create())["id"] for _ in range(3)]
    for shipment_id in ids:
        response = await shipping.client.get(
            f"/v1/shipments/{shipment_id}/label", headers=shipping.headers
        )
        assert response.status_code == 200
    assert shipping.identity.account_calls == 1
    assert shipping.identity.token_calls == 1


async def test_label_of_unknown_shipment_is_404(shipping: Shipping) -> None:
    response = await shipping.client.get(
        f"/v1/shipments/{uuid.uuid4()}/label", headers=shipping.headers
    )
    assert response.status_code == 404


async def test_rendering_a_label_batch_does_not_hold_up_other_requests(
    shipping: Shipping, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch of 500 shipments' labels is a good part of a second of CPU; the process keeps
    answering meanwhile (rendering runs in a worker thread, not on the event loop)."""
    body = await shipping.create()
    render_seconds = 0.5

    def slow_render(labels: list[Label]) -> bytes:
        time.sleep(render_seconds)  # stands in for CPU-bound rendering
        return render_pdf(labels)

    monkeypatch.setattr(label_endpoints, "render_pdf", slow_render)
    ticks: list[float] = []
    printing = asyncio.create_task(
        shipping.client.post(
            "/v1/labels", json={"shipment_ids": [body["id"]]}, headers=shipping.headers
        )
    )
    while not printing.done():
        ticks.append(time.monotonic())
        await asyncio.sleep(0.01)
    response = await printing
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    longest_pause = max(later - earlier for earlier, later in itertools.pairwise(ticks))
    assert longest_pause < render_seconds / 2
