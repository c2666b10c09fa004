"""Request and response bodies of the shipment routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from libs.common.validation import (
    City,
    Country,
    Email,
    HouseNumber,
    Integer,
    PersonName,
    Phone,
    Postcode,
    Street,
    normalise_postcode,
)
from services.shipping_api.vocabulary import (
    Carrier,
    DeliveryService,
    ShipmentMode,
    ShipmentStatus,
)

MAX_BULK = 1000


class RecipientCreate(BaseModel):
    """Who receives the parcel: exactly the fields the privacy statement lists."""

    model_config = ConfigDict(extra="forbid")

    name: PersonName = Field(description="Recipient's name (a person or a company).")
    contact_person: PersonName | None = Field(
        None, description="For a company: who takes the parcel in.", examples=["Piet de Vries"]
    )
    street: Street
    house_number: HouseNumber
    country: Country = Field(description="ISO 3166-1 alpha-2.")
    postcode: Postcode = Field(description="Checked against `country`; Dutch: `1234 AB`.")
    city: City
    email: Email | None = Field(
        None, description="For track & trace messages about this parcel only."
    )
    phone: Phone | None = Field(None, description="For the carrier, when delivery needs it.")

    @field_validator("postcode")
    @classmethod
    def _postcode_fits_country(cls, value: str, info: ValidationInfo) -> str:
        country = info.data.get("country")
        return normalise_postcode(value, country) if isinstance(country, str) else value


class ParcelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    weight_grams: Integer = Field(ge=1, le=70_000, description="Gross weight.", examples=[1200])
    length_cm: Integer = Field(ge=1, le=300, description="Longest side.", examples=[40])
    width_cm: Integer = Field(ge=1, le=300, examples=[30])
    height_cm: Integer = Field(ge=1, le=300, examples=[20])


class ShipmentCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "reference": "ORDER-10023",
                    "carrier": "postnl",
                    "service": "standard",
                    "recipient": {
                        "name": "Jan Jansen",
                        "street": "Griede",
                        "house_number": "22",
                        "postcode": "3191 EE",
                        "city": "Hoogvliet Rotterdam",
                        "country": "NL",
                        "email": "jan.jansen@example.nl",
                        "phone": "+31612345678",
                    },
                    "parcels": [
                        {"weight_grams": 1200, "length_cm": 40, "width_cm": 30, "height_cm": 20}
                    ],
                }
            ]
        },
    )

    reference: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="Your own reference, e.g. the order number.",
        examples=["ORDER-10023"],
    )
    carrier: Carrier
    service: DeliveryService = Field(
        DeliveryService.STANDARD,
        description="Only where the carrier offers it to the destination (see the rate table).",
    )
    recipient: RecipientCreate
    parcels: list[ParcelCreate] = Field(
        min_length=1, max_length=20, description="One entry per collo (multi-collo)."
    )


class Money(BaseModel):
    amount_cents: int = Field(description="Integer cents.", examples=[695])
    currency: str = Field(description="ISO 4217.", examples=["EUR"])


class RecipientRead(BaseModel):
    name: str | None
    contact_person: str | None
    street: str | None
    house_number: str | None
    postcode: str | None
    city: str | None
    country: str | None
    email: str | None
    phone: str | None


class ParcelRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    sequence: int = Field(description="Parcel `sequence` of the shipment's `parcel_count`.")
    weight_grams: int
    length_cm: int
    width_cm: int
    height_cm: int


class ShipmentRead(BaseModel):
    id: uuid.UUID
    reference: str | None
    carrier: Carrier
    service: DeliveryService
    status: ShipmentStatus
    tracking_code: str = Field(examples=["PP7K3QX9M2T4HWB"])
    mode: ShipmentMode = Field(description="`test` for shipments made with a `pp_test_` key.")
    recipient: RecipientRead | None = Field(
        description="Null once the recipient's data has been erased (retention or request)."
    )
    parcel_count: int
    parcels: list[ParcelRead]
    price: Money
    created_at: datetime
    updated_at: datetime
    status_changed_at: datetime


class ShipmentSummary(BaseModel):
    """What a bulk create reports per shipment (no personal data)."""

    id: uuid.UUID
    tracking_code: str
    status: ShipmentStatus
    price: Money


class ShipmentEventRead(BaseModel):
    status: ShipmentStatus
    occurred_at: datetime = Field(
        description="When it happened, by the carrier's clock: the history's order."
    )
    recorded_at: datetime = Field(
        description="When Parcel Pro received it: well after `occurred_at` when the carrier "
        "reported it late (a late scan takes its place in the history without moving the "
        "shipment's status back)."
    )
    city: str | None = Field(description="City only, never an address.")
    description: str


class ShipmentFilters(BaseModel):
    status: ShipmentStatus | None = None
    carrier: Carrier | None = None
    reference: str | None = None
    tracking_code: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    account_id: uuid.UUID | None = None


BulkItem = Annotated[
    dict[str, Any], WithJsonSchema({"$ref": "#/components/schemas/ShipmentCreate"})
]


class ShipmentBulkCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    shipments: list[BulkItem] = Field(
        min_length=1,
        max_length=MAX_BULK,
        description=(
            f"Up to {MAX_BULK} shipments, each as in `POST /v1/shipments`. Each is accepted or "
            "refused on its own: one bad item does not sink the rest."
        ),
    )


class BulkItemResult(BaseModel):
    index: int = Field(description="Position of the item in the request.")
    status: int = Field(
        description=(
            "201 when created (see `shipment`); 422 when fields are wrong (see `errors`); 409 "
            "when the item is valid but could not be stored (see `detail`): nothing was "
            "created for it and it may be sent again."
        ),
        examples=[201, 422, 409],
    )
    shipment: ShipmentSummary | None = None
    errors: list[dict[str, Any]] | None = Field(
        None,
        description="Per-field problems of a 422 item, as in a 422 problem's `errors`.",
    )
    detail: str | None = Field(
        None,
        description="Why a 409 item was not stored; no field of it is at fault, so no `errors`.",
    )


class BulkResult(BaseModel):
    created: int
    failed: int
    results: list[BulkItemResult]


class SimulateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: ShipmentStatus | None = Field(
        None, description="Status to move to; omitted: the next step of a normal delivery."
    )
    city: City | None = Field(None, description="Where the simulated scan happened.")
