"""Bodies of the label routes."""

from __future__ import annotations

import uuid
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

MAX_LABELS = 500


class LabelFormat(StrEnum):
    PDF = "pdf"
    ZPL = "zpl"


class LabelBatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    shipment_ids: list[uuid.UUID] = Field(
        min_length=1,
        max_length=MAX_LABELS,
        description=f"Up to {MAX_LABELS} shipments; one page per parcel, in this order.",
    )
    format: LabelFormat = Field(LabelFormat.PDF, description="`pdf` (A6 pages) or `zpl`.")
