"""What each carrier accepts (parcel limits, collo rules) and what it costs (the rate table).

The prices live in ``rate_table.json`` beside this module, a data file that commercial staff
change without touching code; a (carrier, service, zone) that is not in it is not sold.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from services.shipping_api.vocabulary import Carrier, DeliveryService

RATE_TABLE_PATH = Path(__file__).with_name("rate_table.json")


@dataclass(frozen=True, slots=True)
class ParcelLimits:
    max_weight_grams: int
    max_length_cm: int
    """Longest side."""
    max_girth_cm: int
    """Length + 2 x width + 2 x height, as carriers measure it."""
    max_width_cm: int | None = None
    max_height_cm: int | None = None


@dataclass(frozen=True, slots=True)
class CarrierProfile:
    carrier: Carrier
    display_name: str
    parcel: ParcelLimits
    max_parcels: int
    """Colli per shipment (multi-collo)."""


CARRIERS: dict[Carrier, CarrierProfile] = {
    Carrier.POSTNL: CarrierProfile(Carrier.POSTNL, "PostNL", ParcelLimits(31_500, 176, 300), 10),
    Carrier.DHL: CarrierProfile(
        Carrier.DHL, "DHL", ParcelLimits(31_500, 120, 300, max_width_cm=60, max_height_cm=60), 20
    ),
    Carrier.DPD: CarrierProfile(Carrier.DPD, "DPD", ParcelLimits(31_500, 175, 300), 20),
    Carrier.GLS: CarrierProfile(Carrier.GLS, "GLS", ParcelLimits(40_000, 200, 300), 20),
    Carrier.UPS: CarrierProfile(Carrier.UPS, "UPS", ParcelLimits(70_000, 274, 400), 20),
}

MAILBOX_LIMITS = ParcelLimits(2_000, 38, 200, max_width_cm=26, max_height_cm=3)
"""A Dutch letterbox parcel: it must fit through the slot, and is always a single collo."""


def parcel_limits(carrier: Carrier, service: DeliveryService) -> ParcelLimits:
    if service is DeliveryService.MAILBOX:
        return MAILBOX_LIMITS
    return CARRIERS[carrier].parcel


def max_parcels(carrier: Carrier, service: DeliveryService) -> int:
    return 1 if service is DeliveryService.MAILBOX else CARRIERS[carrier].max_parcels


@dataclass(frozen=True, slots=True)
class RateTable:
    currency: str
    zone_of_country: dict[str, str]
    rates: dict[str, dict[str, dict[str, list[tuple[int, int]]]]]

    def is_offered(self, carrier: Carrier, service: DeliveryService) -> bool:
        return service.value in self.rates.get(carrier.value, {})

    def zone(self, country: str) -> str | None:
        return self.zone_of_country.get(country)

    def tiers(
        self, carrier: Carrier, service: DeliveryService, country: str
    ) -> list[tuple[int, int]] | None:
        zone = self.zone(country)
        if zone is None:
            return None
        return self.rates.get(carrier.value, {}).get(service.value, {}).get(zone)

    def services_of(self, carrier: Carrier) -> list[str]:
        return sorted(self.rates.get(carrier.value, {}))


def _parse(document: dict[str, Any]) -> RateTable:
    zone_of_country = {
        country: zone for zone, countries in document["zones"].items() for country in countries
    }
    rates = {
        carrier: {
            service: {
                zone: sorted((int(w), int(p)) for w, p in tiers) for zone, tiers in zones.items()
            }
            for service, zones in services.items()
        }
        for carrier, services in document["rates"].items()
    }
    return RateTable(
        currency=str(document["currency"]), zone_of_country=zone_of_country, rates=rates
    )


@cache
def rate_table(path: Path = RATE_TABLE_PATH) -> RateTable:
    return _parse(json.loads(path.read_text(encoding="utf-8")))
