"""Answers of the internal data-subject API (decision 0004) that the services give alike."""

from __future__ import annotations

from pydantic import BaseModel


class KeptField(BaseModel):
    table: str
    field: str
    category: str
    reason: str
    retain_years: int | None


class EraseResult(BaseModel):
    service: str
    erased: dict[str, int]
    kept: list[KeptField]


class RestrictResult(BaseModel):
    service: str
    restricted: dict[str, int]


class RectifyResult(BaseModel):
    service: str
    rectified: dict[str, int]
    fields: list[str]
