"""The anonymous delivery report."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field


class AreaCount(BaseModel):
    country: str = Field(examples=["NL"])
    postcode_area: str = Field(description="The first four characters of the postcode.")
    delivered_parcels: int
    shipments: int


class DeliveriesByPostcodeArea(BaseModel):
    period_from: date = Field(alias="from", serialization_alias="from")
    period_to: date = Field(alias="to", serialization_alias="to")
    scope: str = Field(description="`account` (your own deliveries) or `platform` (staff).")
    k: int = Field(description="Areas with fewer shipments than this are left out.")
    areas: list[AreaCount]
    suppressed_areas: int = Field(description="How many areas were left out for being small.")
