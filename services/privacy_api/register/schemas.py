"""The Art. 30 register as the API shows it (and as the data file must be shaped)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Controller(_Strict):
    name: str = Field(examples=["Parcel Pro"])
    address: str
    privacy_officer: str
    privacy_officer_email: str = Field(examples=["privacy@parcelpro.nl"])
    customer_service_email: str
    supervisory_authority: str


class LegalBasis(_Strict):
    key: str = Field(examples=["contract"])
    article: str = Field(examples=["AVG art. 6(1)(b)"])
    description: str


class Recipient(_Strict):
    key: str = Field(examples=["carriers"])
    name: str
    role: str = Field(description="Independent controller, processor, authority ...")
    description: str


class DataCategory(_Strict):
    key: str = Field(
        description="A category of personal data; every personal-data column of every "
        "service is annotated with one.",
        examples=["recipient_address"],
    )
    name: str
    description: str
    retention: str = Field(description="How long data of this category is kept.")
    sources: list[str] = Field(description="Keys of `sources`: where the data comes from.")


class Purpose(_Strict):
    number: int = Field(ge=1, le=10, description="The number in the privacy statement.")
    key: str = Field(examples=["shipment_status"])
    name_nl: str = Field(examples=["We laten u weten of een pakket onderweg is"])
    name: str
    description: str
    legal_bases: list[str] = Field(description="Keys of `legal_bases`.")
    categories: list[str] = Field(description="Keys of `categories`.")
    recipients: list[str] = Field(description="Keys of `recipients`.")
    retention: str


class ConsentText(_Strict):
    purpose: str = Field(examples=["profiling"])
    version: str = Field(examples=["2018-05-24"])
    text: str


class ProcessingActivities(_Strict):
    """The register of processing activities (AVG art. 30(1))."""

    statement_version: str = Field(
        description="Date of the privacy statement the register implements.",
        examples=["2018-05-24"],
    )
    controller: Controller
    legal_bases: list[LegalBasis]
    recipients: list[Recipient]
    categories: list[DataCategory]
    sources: dict[str, str] = Field(description="Where personal data comes from, by key.")
    purposes: list[Purpose]
    consent_texts: list[ConsentText]
