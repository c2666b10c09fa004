"""The readable part of an access export (AVG art. 15(1)(a)-(h)): for the PII categories of
the data found, the purposes, legal bases, recipients, retention periods and sources, from the
register. The services name those categories in their export (``libs.common.pii.export_meta``);
the files of the ZIP are named by the services' own export categories (decision 0302)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from services.privacy_api.register.schemas import ProcessingActivities


def _relevant(register: ProcessingActivities, categories: set[str]) -> dict[str, Any]:
    purposes = [p for p in register.purposes if categories.intersection(p.categories)]
    bases = {key for p in purposes for key in p.legal_bases}
    recipients = {key for p in purposes for key in p.recipients}
    described = [c for c in register.categories if c.key in categories]
    sources = {key for c in described for key in c.sources}
    return {
        "purposes": purposes,
        "legal_bases": [b for b in register.legal_bases if b.key in bases],
        "recipients": [r for r in register.recipients if r.key in recipients],
        "categories": described,
        "sources": {k: v for k, v in register.sources.items() if k in sources},
    }


def summary_text(
    register: ProcessingActivities,
    *,
    request_id: str,
    request_type: str,
    received_at: datetime,
    generated_at: datetime,
    records: dict[str, dict[str, int]],
    found: set[str],
) -> str:
    """``records``: per service, the records per file of the ZIP; ``found``: the PII categories
    of those records."""
    parts = _relevant(register, found)
    bases = {b.key: f"{b.article} ({b.key})" for b in register.legal_bases}
    recipients = {r.key: r.name for r in register.recipients}
    out: list[str] = [
        "Parcel Pro — your personal data",
        "=" * 31,
        "",
        f"Request: {request_id} ({request_type}), received {received_at:%Y-%m-%d}, "
        f"export made {generated_at:%Y-%m-%d %H:%M} UTC.",
        f"Controller: {register.controller.name}, {register.controller.address}. "
        f"{register.controller.privacy_officer}: {register.controller.privacy_officer_email}.",
        "",
        "What this ZIP holds",
        "-------------------",
        "One folder per part of our system; per category of data a .json file (all fields, "
        "machine-readable) and a .csv file (the same, for a spreadsheet). The field `_table` "
        "names the table a record comes from. Secrets such as password hashes are listed as "
        "'[stored, not disclosed]'.",
        "",
    ]
    for service, counts in sorted(records.items()):
        if not counts:
            out.append(f"- {service}: no personal data about you")
            continue
        listed = ", ".join(f"{category} ({count})" for category, count in sorted(counts.items()))
        out.append(f"- {service}: {listed}")
    out += ["", "Categories, retention and sources", "---------------------------------"]
    for category in parts["categories"]:
        sources = " ".join(register.sources[key] for key in category.sources)
        out += [
            f"* {category.name} ({category.key}): {category.description}",
            f"  Kept: {category.retention}",
            f"  Source: {sources}",
        ]
    out += ["", "Why we use it (purposes) and on which legal basis", "-" * 49]
    for purpose in parts["purposes"]:
        used = ", ".join(sorted(found.intersection(purpose.categories)))
        out += [
            f"{purpose.number}. {purpose.name_nl} — {purpose.name}",
            f"   {purpose.description}",
            f"   Legal basis: {', '.join(bases[key] for key in purpose.legal_bases)}",
            f"   Your data used: {used}",
            f"   Shared with: {', '.join(recipients[k] for k in purpose.recipients) or 'nobody'}",
            f"   Kept: {purpose.retention}",
        ]
    out += [
        "",
        "Recipients",
        "----------",
        *[f"- {r.name} ({r.role}): {r.description}" for r in parts["recipients"]],
        "",
        "Automated decisions",
        "-------------------",
        "We take no decisions about you based solely on automated processing that have legal "
        "or similarly significant effects (art. 22). Profiling only happens with your consent.",
        "",
        "Your rights",
        "-----------",
        "You may ask us to correct, restrict or erase your data, object to its use and receive "
        "it to pass on to someone else (POST /v1/privacy/requests, or a letter to our Privacy "
        "Office). You may withdraw a consent at any time (PUT /v1/privacy/consents). You may "
        f"complain to the {register.controller.supervisory_authority}.",
        "",
    ]
    return "\n".join(out)


def summary_json(
    register: ProcessingActivities, records: dict[str, dict[str, int]], found: set[str]
) -> bytes:
    parts = _relevant(register, found)
    document = {
        "records": records,
        "pii_categories": sorted(found),
        "controller": register.controller.model_dump(),
        "purposes": [p.model_dump() for p in parts["purposes"]],
        "legal_bases": [b.model_dump() for b in parts["legal_bases"]],
        "recipients": [r.model_dump() for r in parts["recipients"]],
        "categories": [c.model_dump() for c in parts["categories"]],
        "sources": parts["sources"],
    }
    return orjson.dumps(document, option=orjson.OPT_INDENT_2)
