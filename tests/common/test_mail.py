"""Mail goes over real SMTP when configured, else into var/outbox as .eml files."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

from libs.common.mail import OutboxDirMailer, OutgoingMail, SmtpMailer, mailer_from_settings
from tests.support.smtp import Inbox

MAIL = OutgoingMail(
    to="jan@example.nl",
    subject="Uw pakket is onderweg",
    text="Track & trace: 3SPPRO1234567",
    html="<p>Track &amp; trace</p>",
)


async def test_smtp_mailer_delivers_to_a_real_server(smtp: tuple[str, Inbox]) -> None:
    url, inbox = smtp
    await SmtpMailer(url, sender="Parcel Pro <noreply@parcelpro.nl>").send(MAIL)
    [message] = await inbox.wait_for("jan@example.nl")
    assert message["Subject"] == "Uw pakket is onderweg"
    assert message["From"] == "Parcel Pro <noreply@parcelpro.nl>"
    assert "3SPPRO1234567" in Inbox.body(message)


async def test_without_smtp_url_mail_lands_in_the_outbox(tmp_path: Path) -> None:
    mailer = mailer_from_settings(None, var_dir=tmp_path, sender="noreply@parcelpro.nl")
    assert isinstance(mailer, OutboxDirMailer)
    await mailer.send(MAIL)
    [path] = list((tmp_path / "outbox").glob("*.eml"))
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert message["To"] == "jan@example.nl"
    assert "3SPPRO1234567" in message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
