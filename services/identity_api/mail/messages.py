"""The texts of identity's e-mails (Dutch first, English below: the customers are Dutch
businesses, their staff not always)."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from libs.common.mail import OutgoingMail

ACCOUNT_HOLDERS_TIME_ZONE = ZoneInfo("Europe/Amsterdam")
"""Times in mails are the account holders' local time: they are Dutch businesses."""


def local_time(moment: datetime) -> str:
    """``2026-11-25 10:03 CET``: unambiguous in Dutch and English alike."""
    return moment.astimezone(ACCOUNT_HOLDERS_TIME_ZONE).strftime("%Y-%m-%d %H:%M %Z")


def verify_email(to: str, *, name: str, link: str, hours: int) -> OutgoingMail:
    return OutgoingMail(
        to=to,
        subject="Bevestig uw e-mailadres / Confirm your e-mail address — Parcel Pro",
        text=(
            f"Beste {name},\n\n"
            "Bevestig uw e-mailadres voor uw Parcel Pro-account met deze link:\n\n"
            f"{link}\n\n"
            f"De link werkt één keer en verloopt na {hours} uur.\n"
            "Heeft u geen account aangemaakt? Dan kunt u deze e-mail negeren.\n\n"
            "---\n\n"
            f"Please confirm the e-mail address of your Parcel Pro account: {link}\n"
            f"The link works once and expires after {hours} hours.\n"
        ),
    )


def reset_password(to: str, *, name: str, link: str, minutes: int) -> OutgoingMail:
    return OutgoingMail(
        to=to,
        subject="Wachtwoord opnieuw instellen / Reset your password — Parcel Pro",
        text=(
            f"Beste {name},\n\n"
            "Iemand vroeg om het wachtwoord van uw Parcel Pro-account opnieuw in te stellen.\n"
            "Was u dat? Kies dan een nieuw wachtwoord met deze link:\n\n"
            f"{link}\n\n"
            f"De link werkt één keer en verloopt na {minutes} minuten.\n"
            "Was u het niet? Dan blijft uw wachtwoord zoals het is; u hoeft niets te doen.\n\n"
            "---\n\n"
            f"To choose a new password for your Parcel Pro account, open: {link}\n"
            f"The link works once and expires after {minutes} minutes. Did not ask for it? "
            "Ignore this e-mail.\n"
        ),
    )


def password_changed(to: str, *, name: str) -> OutgoingMail:
    return OutgoingMail(
        to=to,
        subject="Uw wachtwoord is gewijzigd / Your password was changed — Parcel Pro",
        text=(
            f"Beste {name},\n\n"
            "Het wachtwoord van uw Parcel Pro-account is zojuist gewijzigd en alle sessies zijn "
            "afgemeld. Was u dat niet? Stel dan meteen een nieuw wachtwoord in en neem contact "
            "op met ict@parcelpro.nl.\n\n"
            "---\n\n"
            "The password of your Parcel Pro account was just changed and every session was "
            "signed out. If this was not you, reset your password and contact ict@parcelpro.nl.\n"
        ),
    )


def email_changed(to: str, *, name: str, new_address: str) -> OutgoingMail:
    return OutgoingMail(
        to=to,
        subject="Uw e-mailadres is gewijzigd / Your e-mail address was changed — Parcel Pro",
        text=(
            f"Beste {name},\n\n"
            f"Het e-mailadres van uw Parcel Pro-account is gewijzigd in {new_address}. "
            "Was u dat niet? Neem dan meteen contact op met ict@parcelpro.nl.\n\n"
            "---\n\n"
            f"The e-mail address of your Parcel Pro account was changed to {new_address}. "
            "If this was not you, contact ict@parcelpro.nl at once.\n"
        ),
    )


def webhook_endpoint_switched_off(
    to: str,
    *,
    name: str,
    endpoint_id: uuid.UUID,
    url: str,
    failing_since: datetime | None,
    disabled_at: datetime,
) -> OutgoingMail:
    """Shipping switched off a webhook endpoint that kept failing (decision 0206)."""
    endpoint = f"/v1/webhook-endpoints/{endpoint_id}"
    failing_nl = f"Mislukt sinds: {local_time(failing_since)}\n" if failing_since else ""
    failing_en = f"Failing since: {local_time(failing_since)}\n" if failing_since else ""
    return OutgoingMail(
        to=to,
        subject="Webhook-endpoint uitgeschakeld / Webhook endpoint switched off — Parcel Pro",
        text=(
            f"Beste {name},\n\n"
            "Berichten aan dit webhook-endpoint van uw Parcel Pro-account bleven mislukken, "
            "daarom hebben we het uitgeschakeld:\n\n"
            f"{url}\n\n"
            f"{failing_nl}"
            f"Uitgeschakeld op: {local_time(disabled_at)}\n\n"
            "Zolang het uit staat, sturen we er geen gebeurtenissen naartoe. Zet het weer aan "
            "met\n\n"
            f'  PATCH {endpoint}  {{"is_active": true}}\n\n'
            "Afleveringen die intussen mislukten (ook die nog in de wachtrij stonden toen het "
            f"uitging; zie GET {endpoint}/deliveries) kunt u daarna opnieuw laten afleveren "
            "met\n\n"
            f"  POST {endpoint}/deliveries/{{delivery_id}}/redeliver\n\n"
            "---\n\n"
            "Deliveries to this webhook endpoint of your Parcel Pro account kept failing, so we "
            "switched it off:\n\n"
            f"{url}\n\n"
            f"{failing_en}"
            f"Switched off: {local_time(disabled_at)}\n\n"
            "No events are sent to it until it is switched on again with\n\n"
            f'  PATCH {endpoint}  {{"is_active": true}}\n\n'
            "Once it is on, deliveries that failed meanwhile (including those still queued when it "
            f"went off; see GET {endpoint}/deliveries) can be redelivered with\n\n"
            f"  POST {endpoint}/deliveries/{{delivery_id}}/redeliver\n"
        ),
    )
