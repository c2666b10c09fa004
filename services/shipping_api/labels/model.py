"""What goes on a label, whatever the printer language."""

from __future__ import annotations

from dataclasses import dataclass

from services.shipping_api.labels.sender import Sender


@dataclass(frozen=True, slots=True)
class LabelAddress:
    name: str
    contact_person: str | None
    street: str
    house_number: str
    postcode: str
    city: str
    country: str

    def lines(self) -> list[str]:
        lines = [self.name]
        if self.contact_person:
            lines.append(f"t.a.v. {self.contact_person}")
        lines.append(f"{self.street} {self.house_number}")
        lines.append(f"{self.postcode}  {self.city}")
        lines.append(self.country)
        return lines

    @classmethod
    def of_sender(cls, sender: Sender) -> LabelAddress:
        return cls(
            name=sender.name,
            contact_person=sender.contact_person,
            street=sender.street,
            house_number=sender.house_number,
            postcode=sender.postcode,
            city=sender.city,
            country=sender.country,
        )


@dataclass(frozen=True, slots=True)
class Label:
    """One label: one parcel (collo ``sequence`` of ``count``) of a shipment."""

    tracking_code: str
    carrier: str
    service: str
    sender: LabelAddress
    recipient: LabelAddress
    sequence: int
    count: int
    weight_grams: int
    reference: str | None
    is_sandbox: bool
