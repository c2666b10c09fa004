"""E-mails to recipients from the durable mail outbox, over SMTP."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from libs.common.mail import SmtpMailer
from services.shipping_api.models import RecipientMail, Shipment
from services.shipping_api.settings import ShippingSettings
from tests.shipping.conftest import Shipping, settings_for, start_shipping
from tests.support.shipping_carriers import carrier_event, push_event
from tests.support.smtp import Inbox
from tests.support.tokens import TokenIssuer

RECIPIENT = "jan.jansen@example.nl"


@pytest.fixture
async def mailing(
    shipping_settings: ShippingSettings, issuer: TokenIssuer, smtp: tuple[str, Inbox]
) -> AsyncIterator[tuple[Shipping, Inbox]]:
    url, inbox = smtp
    mailer = SmtpMailer(url, sender="Parcel Pro <noreply@parcelpro.nl>")
    async with start_shipping(settings_for(shipping_settings), issuer, mailer=mailer) as shipping:
        yield shipping, inbox


async def move(shipping: Shipping, code: str, *statuses: str) -> None:
    for status in statuses:
        response = await push_event(
            shipping.client, "postnl", carrier_event(code, status, str(uuid.uuid4()))
        )
        assert response.status_code == 200, response.text


async def send_due(shipping: Shipping) -> int:
    sent: int = await shipping.app.state.recipient_mail.run_once(shipping.clock.now())
    return sent


async def test_recipient_is_mailed_at_each_milestone(mailing: tuple[Shipping, Inbox]) -> None:
    shipping, inbox = mailing
    shipment = await shipping.create()
    code = shipment["tracking_code"]
    for status in ("handed_to_carrier", "in_transit", "out_for_delivery", "delivery_failed"):
        await move(shipping, code, status)
        await send_due(shipping)
    await move(shipping, code, "out_for_delivery", "delivered")  # both before the next run
    await send_due(shipping)
    messages = await inbox.wait_for(RECIPIENT, count=4)
    subjects = [str(m["Subject"]) for m in messages]
    assert subjects == [
        f"Je pakket is onderweg ({code})",
        f"Je pakket wordt vandaag bezorgd ({code})",
        f"We konden je pakket niet bezorgen ({code})",
        f"Je pakket is bezorgd ({code})",
    ]
    body = Inbox.body(messages[0])
    assert "Beste Jan Jansen," in body
    assert f"http://localhost:8000/v1/tracking/{code}?postcode=3191EE" in body
    assert "Referentie van de afzender: ORDER-1001" in body
    assert await send_due(shipping) == 0


async def test_restricted_recipient_gets_only_what_delivery_needs(
    mailing: tuple[Shipping, Inbox],
) -> None:
    shipping, inbox = mailing
    shipment = await shipping.create()
    async with shipping.session() as session:
        await session.execute(update(Shipment).values(is_restricted=True))
        await session.commit()
    code = shipment["tracking_code"]
    for status in ("handed_to_carrier", "out_for_delivery", "delivered"):
        await move(shipping, code, status)
        await send_due(shipping)
    messages = await inbox.wait_for(RECIPIENT, count=1)
    assert [str(m["Subject"]) for m in messages] == [f"Je pakket wordt vandaag bezorgd ({code})"]
    assert "ORDER-1001" not in Inbox.body(messages[0])
    async with shipping.session() as session:
        states = dict(
            (await session.execute(select(RecipientMail.status, RecipientMail.state))).all()
        )
    assert states == {
        "handed_to_carrier": "skipped",
        "out_for_delivery": "sent",
        "delivered": "skipped",
    }


async def test_sandbox_shipments_never_mail_a_real_person(mailing: tuple[Shipping, Inbox]) -> None:
    shipping, inbox = mailing
    shipment = await shipping.create(headers=shipping.test_headers)
    for _ in range(5):
        await shipping.client.post(
            f"/v1/shipments/{shipment['id']}/simulate", headers=shipping.test_headers
        )
    assert await send_due(shipping) == 0
    assert inbox.messages == []


async def test_shipment_without_email_queues_nothing(mailing: tuple[Shipping, Inbox]) -> None:
    shipping, _ = mailing
    shipment = await shipping.create(recipient_changes={"email": None})
    await move(shipping, shipment["tracking_code"], "handed_to_carrier")
    assert await send_due(shipping) == 0


async def test_mail_server_down_is_retried_later(
    shipping_settings: ShippingSettings, issuer: TokenIssuer, smtp: tuple[str, Inbox]
) -> None:
    url, inbox = smtp
    broken = SmtpMailer("smtp://127.0.0.1:1", sender="noreply@parcelpro.nl", timeout_seconds=1)
    async with start_shipping(settings_for(shipping_settings), issuer, mailer=broken) as shipping:
        shipment = await shipping.create()
        await move(shipping, shipment["tracking_code"], "handed_to_carrier")
        assert await send_due(shipping) == 1
        async with shipping.session() as session:
            mail = await session.scalar(select(RecipientMail))
        assert mail is not None
        assert mail.state == "pending"
        assert mail.attempts == 1
        shipping.app.state.recipient_mail.mailer = SmtpMailer(url, sender="noreply@parcelpro.nl")
        assert await send_due(shipping) == 0  # backing off
        shipping.clock.advance(timedelta(minutes=5))
        assert await send_due(shipping) == 1
        await inbox.wait_for(RECIPIENT)


async def mail_states(shipping: Shipping) -> list[tuple[str, str]]:
    async with shipping.session() as session:
        rows = await session.execute(
            select(RecipientMail.status, RecipientMail.state).order_by(RecipientMail.created_at)
        )
    return [(status, state) for status, state in rows.all()]


async def test_a_mail_overtaken_by_the_delivery_is_superseded_not_sent(
    shipping_settings: ShippingSettings, issuer: TokenIssuer, smtp: tuple[str, Inbox]
) -> None:
    url, inbox = smtp
    broken = SmtpMailer("smtp://127.0.0.1:1", sender="noreply@parcelpro.nl", timeout_seconds=1)
    async with start_shipping(settings_for(shipping_settings), issuer, mailer=broken) as shipping:
        code = (await shipping.create())["tracking_code"]
        await move(shipping, code, "handed_to_carrier", "out_for_delivery")
        shipping.clock.advance(timedelta(seconds=1))
        assert await send_due(shipping) == 2  # the mail server is down: both wait for a retry
        await move(shipping, code, "delivered")
        shipping.app.state.recipient_mail.mailer = SmtpMailer(url, sender="noreply@parcelpro.nl")
        shipping.clock.advance(timedelta(minutes=5))
        await send_due(shipping)
        messages = await inbox.wait_for(RECIPIENT, count=1)
        assert [str(m["Subject"]) for m in messages] == [f"Je pakket is bezorgd ({code})"]
        assert await mail_states(shipping) == [
            ("handed_to_carrier", "superseded"),
            ("out_for_delivery", "superseded"),
            ("delivered", "sent"),
        ]


async def test_on_its_way_is_still_sent_once_in_transit(mailing: tuple[Shipping, Inbox]) -> None:
    shipping, inbox = mailing
    code = (await shipping.create())["tracking_code"]
    await move(shipping, code, "handed_to_carrier", "in_transit")
    await send_due(shipping)
    messages = await inbox.wait_for(RECIPIENT, count=1)
    assert [str(m["Subject"]) for m in messages] == [f"Je pakket is onderweg ({code})"]


async def test_delivered_today_is_not_sent_the_next_day(
    shipping_settings: ShippingSettings, issuer: TokenIssuer, smtp: tuple[str, Inbox]
) -> None:
    url, inbox = smtp
    broken = SmtpMailer("smtp://127.0.0.1:1", sender="noreply@parcelpro.nl", timeout_seconds=1)
    async with start_shipping(settings_for(shipping_settings), issuer, mailer=broken) as shipping:
        code = (await shipping.create())["tracking_code"]
        await move(shipping, code, "handed_to_carrier", "out_for_delivery")
        await send_due(shipping)
        shipping.app.state.recipient_mail.mailer = SmtpMailer(url, sender="noreply@parcelpro.nl")
        # The mail server is back after midnight in the Netherlands (NOW is 10:00 there).
        shipping.clock.advance(timedelta(hours=14, minutes=30))
        await send_due(shipping)
        # "Onderweg" was overtaken by "vandaag bezorgd", and that is untrue on the next day.
        assert await mail_states(shipping) == [
            ("handed_to_carrier", "superseded"),
            ("out_for_delivery", "superseded"),
        ]
        assert inbox.messages == []


async def test_mails_link_to_the_configured_tracking_page(
    shipping_settings: ShippingSettings, issuer: TokenIssuer, smtp: tuple[str, Inbox]
) -> None:
    url, inbox = smtp
    settings = settings_for(
        shipping_settings,
        tracking_page_url="https://www.parcelpro.nl/volgen/{tracking_code}?postcode={postcode}",
    )
    mailer = SmtpMailer(url, sender="noreply@parcelpro.nl")
    async with start_shipping(settings, issuer, mailer=mailer) as shipping:
        code = (await shipping.create())["tracking_code"]
        await move(shipping, code, "handed_to_carrier")
        await send_due(shipping)
        body = Inbox.body((await inbox.wait_for(RECIPIENT, count=1))[0])
        assert f"Volg je pakket: https://www.parcelpro.nl/volgen/{code}?postcode=3191EE" in body
        assert "/v1/tracking/" not in body
