"""E-mail confirmation links, delivered through the durable outbox over real SMTP."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from libs.common.mail import SmtpMailer
from services.identity_api.models import OutboxMail
from tests.support.identity_app import Identity, account_body, bearer, link_token
from tests.support.smtp import Inbox, free_port


async def test_registration_mails_a_link_that_confirms_the_address(
    identity: Identity, inbox: Inbox
) -> None:
    account = await identity.register()
    assert await identity.deliver_mail() == 1
    mail = (await inbox.wait_for(account["email"]))[0]
    assert "Bevestig" in str(mail["Subject"])
    token = link_token(Inbox.body(mail))
    response = await identity.client.post("/v1/auth/verify-email", json={"token": token})
    assert response.status_code == 204
    tokens = await identity.login(account["email"])
    me = await identity.client.get("/v1/accounts/me", headers=bearer(tokens["access_token"]))
    assert me.json()["email_verified"] is True
    again = await identity.client.post("/v1/auth/verify-email", json={"token": token})
    assert again.status_code == 422
    assert again.json()["errors"][0]["field"] == "token"


async def test_confirmation_link_expires(identity: Identity, inbox: Inbox) -> None:
    account = await identity.register()
    await identity.deliver_mail()
    token = link_token(Inbox.body((await inbox.wait_for(account["email"]))[0]))
    identity.clock.advance(timedelta(hours=49))
    response = await identity.client.post("/v1/auth/verify-email", json={"token": token})
    assert response.status_code == 422


async def test_resend_mails_a_new_link(identity: Identity, inbox: Inbox) -> None:
    account, headers = await identity.user()
    response = await identity.client.post("/v1/auth/verify-email/resend", headers=headers)
    assert response.status_code == 202
    await identity.deliver_mail()
    mails = await inbox.wait_for(account["email"], count=2)
    first, second = (link_token(Inbox.body(mail)) for mail in mails)
    assert (
        await identity.client.post("/v1/auth/verify-email", json={"token": first})
    ).status_code == 422
    assert (
        await identity.client.post("/v1/auth/verify-email", json={"token": second})
    ).status_code == 204


async def test_a_mail_server_outage_delays_mail_but_loses_none(
    identity: Identity, smtp: tuple[str, Inbox]
) -> None:
    url, inbox = smtp
    identity.app.state.mailer = SmtpMailer(
        f"smtp://127.0.0.1:{free_port()}", sender="noreply@parcelpro.nl", timeout_seconds=2
    )
    account = await identity.register()
    assert await identity.deliver_mail() == 0
    async with identity.database.session() as session:
        waiting = (await session.scalars(select(OutboxMail))).all()
    assert [(m.to_address, m.attempts) for m in waiting] == [(account["email"], 1)]
    assert waiting[0].last_error

    identity.app.state.mailer = SmtpMailer(url, sender="noreply@parcelpro.nl")
    assert await identity.deliver_mail() == 0  # not due yet: it backs off
    identity.clock.advance(timedelta(seconds=31))
    assert await identity.deliver_mail() == 1
    assert len(await inbox.wait_for(account["email"])) == 1
    async with identity.database.session() as session:
        left = await session.scalar(select(func.count()).select_from(OutboxMail))
    assert left == 0  # delivered mail (with its single-use link) is not kept


async def test_a_failed_request_sends_no_mail(identity: Identity, inbox: Inbox) -> None:
    await identity.register(email="taken@example.nl")
    await identity.deliver_mail()
    response = await identity.client.post(
        "/v1/auth/register",
        json=account_body(email="TAKEN@example.nl"),
    )
    assert response.status_code == 409
    assert await identity.deliver_mail() == 0
    assert len(inbox.to("taken@example.nl")) == 1
