"""The merged OpenAPI document in docs/ is the one the code produces (`make openapi`)."""

from __future__ import annotations

from pathlib import Path

from libs.common.openapi import swagger_html, swagger_initializer
from services.gateway.openapi import TITLE, merged_document, render

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_committed_openapi_document_is_current() -> None:
    committed = (DOCS / "openapi.json").read_text(encoding="utf-8")
    assert committed == render(merged_document()), "docs/openapi.json is stale: run `make openapi`"


def test_committed_docs_page_is_current() -> None:
    page = (DOCS / "api" / "index.html").read_text(encoding="utf-8")
    assert page == swagger_html(title=TITLE, openapi_url="/openapi.json", assets_url="/docs/assets")
    initializer = (DOCS / "api" / "swagger-initializer-parcelpro.js").read_text(encoding="utf-8")
    assert initializer == swagger_initializer("/openapi.json")


def test_merged_document_has_no_internal_or_operational_paths() -> None:
    paths = merged_document()["paths"]
    assert not [p for p in paths if p.startswith("/internal") or p in {"/healthz", "/readyz"}]
