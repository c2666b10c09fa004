"""What we write to requesters and to the privacy officer about a request."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from libs.common.mail import OutgoingMail
from services.privacy_api.models import PrivacyRequest, PrivacyTask

SIGNATURE = (
    "\n\nParcel Pro — Functionaris voor de Gegevensbescherming\n"
    "privacy@parcelpro.nl · Griede 22, 3191 EE Hoogvliet Rotterdam\n"
)
COMPLAINT = (
    "\nIf you are not satisfied with how we handled your request, you can complain to the "
    "Autoriteit Persoonsgegevens (https://autoriteitpersoonsgegevens.nl) or go to court.\n"
)


def _date(moment: datetime) -> str:
    return moment.strftime("%d-%m-%Y %H:%M UTC")


def verification_code(to: str, code: str, request: PrivacyRequest, minutes: int) -> OutgoingMail:
    return OutgoingMail(
        to=to,
        subject=f"Your Parcel Pro privacy request: code {code}",
        text=(
            f"We received a privacy request ({request.type}) for this e-mail address.\n\n"
            f"Your code: {code}\n\n"
            f"Enter it within {minutes} minutes to confirm that the request is yours. "
            "If you did not make this request, ignore this e-mail: nothing will happen." + SIGNATURE
        ),
    )


def _task_lines(tasks: list[PrivacyTask]) -> str:
    lines: list[str] = []
    for task in sorted(tasks, key=lambda t: t.service):
        result: dict[str, Any] = task.result or {}
        if task.action == "erase":
            erased = ", ".join(f"{k}: {v}" for k, v in (result.get("erased") or {}).items())
            lines.append(f"- {task.service}: erased or anonymised ({erased or 'nothing held'})")
            for kept in result.get("kept") or []:
                years = f", {kept['retain_years']} years" if kept.get("retain_years") else ""
                lines.append(
                    f"    kept {kept['table']}.{kept['field']} ({kept['category']}{years}): "
                    f"{kept['reason']}"
                )
        elif task.action == "export":
            lines.append(f"- {task.service}: {result.get('records', 0)} records exported")
        elif task.action == "rectify":
            fields = ", ".join(result.get("fields") or [])
            lines.append(f"- {task.service}: corrected {fields or 'nothing'}")
        elif task.action in {"restrict", "object"}:
            lines.append(f"- {task.service}: processing restricted")
            if result.get("withdrawn"):
                lines.append(f"    consent withdrawn: {', '.join(result['withdrawn'])}")
        if task.status == "failed":
            lines.append(f"    could not be done: {task.last_error}")
    return "\n".join(lines)


def completed(
    to: str, request: PrivacyRequest, tasks: list[PrivacyTask], base_url: str
) -> OutgoingMail:
    text = f"Your privacy request ({request.type}) of {_date(request.received_at)} is done.\n\n"
    text += _task_lines(tasks) + "\n"
    if request.export_file and request.export_expires_at is not None:
        text += (
            f"\nDownload your data (a ZIP with JSON and CSV files and a summary of how we use "
            f"it) at {base_url}/v1/privacy/requests/{request.id}/export until "
            f"{_date(request.export_expires_at)}. After that it is deleted.\n"
        )
    return OutgoingMail(
        to=to,
        subject="Your Parcel Pro privacy request is done",
        text=text + COMPLAINT + SIGNATURE,
    )


def failed(to: str, request: PrivacyRequest, tasks: list[PrivacyTask]) -> OutgoingMail:
    return OutgoingMail(
        to=to,
        subject="Your Parcel Pro privacy request could not be completed",
        text=(
            f"Your privacy request ({request.type}) of {_date(request.received_at)} could not "
            "be completed in full:\n\n" + _task_lines(tasks) + "\n\n"
            "Correct the values and send a new request, or reply to privacy@parcelpro.nl.\n"
            + COMPLAINT
            + SIGNATURE
        ),
    )


def extended(to: str, request: PrivacyRequest) -> OutgoingMail:
    return OutgoingMail(
        to=to,
        subject="Your Parcel Pro privacy request needs more time",
        text=(
            f"We need more time to answer your privacy request ({request.type}) of "
            f"{_date(request.received_at)}. The new deadline is {_date(request.due_at)}.\n\n"
            f"Reason: {request.extension_reason}\n" + COMPLAINT + SIGNATURE
        ),
    )


def rejected(to: str, request: PrivacyRequest) -> OutgoingMail:
    return OutgoingMail(
        to=to,
        subject="Your Parcel Pro privacy request",
        text=(
            f"We will not act on your privacy request ({request.type}) of "
            f"{_date(request.received_at)}.\n\nReason: {request.rejection_reason}\n"
            + COMPLAINT
            + SIGNATURE
        ),
    )


def officer_notice(to: str, request: PrivacyRequest, tasks: list[PrivacyTask]) -> OutgoingMail:
    """Letters are answered by post and disclosures go to the authority: the officer sends
    the answer."""
    return OutgoingMail(
        to=to,
        subject=(
            f"Privacy request {request.id} ({request.source}, {request.type}): {request.status}"
        ),
        text=(
            f"Request {request.id} ({request.type}, received {_date(request.received_at)}, "
            f"source {request.source}) is {request.status}.\n\n" + _task_lines(tasks) + "\n"
        ),
    )
