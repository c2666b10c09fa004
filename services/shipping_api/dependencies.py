"""FastAPI dependencies of shipping_api: settings and the collaborators built at start-up."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.shipping_api.carriers.catalogue import RateTable
from services.shipping_api.recipients.blind_index import BlindIndex
from services.shipping_api.settings import ShippingSettings
from services.shipping_api.shipments.lifecycle import Outboxes


async def get_settings(request: Request) -> ShippingSettings:
    settings: ShippingSettings = request.app.state.settings
    return settings


async def get_blind_index(request: Request) -> BlindIndex:
    index: BlindIndex = request.app.state.blind_index
    return index


async def get_rate_table(request: Request) -> RateTable:
    table: RateTable = request.app.state.rate_table
    return table


async def get_outboxes(request: Request) -> Outboxes:
    outboxes: Outboxes = request.app.state.outboxes
    return outboxes


SettingsDep = Annotated[ShippingSettings, Depends(get_settings)]
BlindIndexDep = Annotated[BlindIndex, Depends(get_blind_index)]
RateTableDep = Annotated[RateTable, Depends(get_rate_table)]
OutboxesDep = Annotated[Outboxes, Depends(get_outboxes)]
