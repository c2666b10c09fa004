"""Outgoing e-mail: over SMTP when ``SMTP_URL`` is set, else as ``.eml`` files in
``var/outbox/`` so a developer can open what the platform would have sent."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib

from libs.common.db import utcnow, uuid7


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    to: str
    subject: str
    text: str
    html: str | None = None
    reply_to: str | None = None


def build_message(mail: OutgoingMail, *, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Message-ID"] = make_msgid(domain="parcelpro.nl")
    message["Date"] = utcnow().strftime("%a, %d %b %Y %H:%M:%S +0000")
    if mail.reply_to:
        message["Reply-To"] = mail.reply_to
    message.set_content(mail.text)
    if mail.html:
        message.add_alternative(mail.html, subtype="html")
    return message


class Mailer(Protocol):
    async def send(self, mail: OutgoingMail) -> None: ...


class SmtpMailer:
    """``smtp://[user:pass@]host:port`` (STARTTLS when offered) or ``smtps://`` (implicit TLS)."""

    def __init__(self, url: str, *, sender: str, timeout_seconds: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
            raise ValueError("SMTP_URL must look like smtp://host:port or smtps://host:port")
        self.hostname = parts.hostname
        self.use_tls = parts.scheme == "smtps"
        self.port = parts.port or (465 if self.use_tls else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.sender = sender
        self.timeout = timeout_seconds

    async def send(self, mail: OutgoingMail) -> None:
        await aiosmtplib.send(
            build_message(mail, sender=self.sender),
            hostname=self.hostname,
            port=self.port,
            username=self.username,
            password=self.password,
            use_tls=self.use_tls,
            start_tls=None if not self.use_tls else False,
            timeout=self.timeout,
        )


class OutboxDirMailer:
    """Writes each message as an ``.eml`` file (the embedded default)."""

    def __init__(self, directory: Path, *, sender: str) -> None:
        self.directory = directory
        self.sender = sender

    async def send(self, mail: OutgoingMail) -> None:
        message = build_message(mail, sender=self.sender)
        path = self.directory / f"{utcnow():%Y%m%dT%H%M%S}-{uuid7()}.eml"
        await asyncio.to_thread(self._write, path, message.as_bytes())

    def _write(self, path: Path, data: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)


def mailer_from_settings(smtp_url: str | None, *, var_dir: Path, sender: str) -> Mailer:
    if smtp_url:
        return SmtpMailer(smtp_url, sender=sender)
    return OutboxDirMailer(var_dir / "outbox", sender=sender)
