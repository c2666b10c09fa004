"""Builds the merged OpenAPI document of all services (``make openapi``) and the local
Swagger UI page the gateway serves at ``/docs``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from libs.common.openapi import merge_documents, swagger_html, swagger_initializer
from services.identity_api.app import VERSION
from services.identity_api.app import create_app as create_identity
from services.identity_api.settings import IdentitySettings
from services.privacy_api.app import create_app as create_privacy
from services.privacy_api.settings import PrivacySettings
from services.shipping_api.app import create_app as create_shipping
from services.shipping_api.settings import ShippingSettings

TITLE = "Parcel Pro API"
DESCRIPTION = (
    "The public API of the Parcel Pro platform: identity (accounts, login, API keys), shipping "
    "(shipments, labels, track & trace, webhooks, reports) and privacy (data-subject requests, "
    "consents, registers). Authenticate with `Authorization: Bearer <access token or API key>`. "
    "Errors are RFC 9457 `application/problem+json` documents."
)


def service_documents() -> dict[str, dict[str, Any]]:
    return {
        "identity": create_identity(IdentitySettings(docs_enabled=True)).openapi(),
        "shipping": create_shipping(ShippingSettings(docs_enabled=True)).openapi(),
        "privacy": create_privacy(PrivacySettings(docs_enabled=True)).openapi(),
    }


def merged_document() -> dict[str, Any]:
    return merge_documents(
        service_documents(), title=TITLE, version=VERSION, description=DESCRIPTION
    )


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def write_docs(docs_dir: Path) -> list[Path]:
    """Write ``openapi.json`` and the Swagger UI page into ``docs_dir``; return the files."""
    api_dir = docs_dir / "api"
    api_dir.mkdir(parents=True, exist_ok=True)
    files = {
        docs_dir / "openapi.json": render(merged_document()),
        api_dir / "index.html": swagger_html(
            title=TITLE, openapi_url="/openapi.json", assets_url="/docs/assets"
        ),
        api_dir / "swagger-initializer-parcelpro.js": swagger_initializer("/openapi.json"),
    }
    for path, content in files.items():
        path.write_text(content, encoding="utf-8")
    return list(files)
