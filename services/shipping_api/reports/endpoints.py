"""``/v1/reports``: anonymous counts."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from libs.common.auth import PrincipalDep, Role, Scope
from libs.common.db import SessionDep
from libs.common.errors import Forbidden, ValidationFailed, problem_responses
from libs.common.validation import Day
from services.shipping_api.reports import service
from services.shipping_api.reports.schemas import DeliveriesByPostcodeArea

router = APIRouter(prefix="/v1/reports", tags=["reports"])

MAX_PERIOD = timedelta(days=366)


async def report_scope(principal: PrincipalDep) -> uuid.UUID | None:
    """Whose deliveries the caller may count (``None``: the whole platform), decided before
    the query is read."""
    if principal.is_account_holder:
        if not principal.has_scopes(Scope.REPORTS_READ.value):
            raise Forbidden("the credential lacks the scope(s): reports:read")
        return principal.account_id
    if principal.is_staff and principal.has_role(Role.ADMIN):
        return None
    raise Forbidden("reports are for account holders and administrators")


@router.get(
    "/deliveries-by-postcode-area",
    response_model=DeliveriesByPostcodeArea,
    response_model_by_alias=True,
    summary="Delivered parcels per 4-digit postcode area",
    description=(
        "Account holders (scope `reports:read`) get their own deliveries; staff with the "
        "`admin` role get the whole platform. Areas with fewer than k=10 delivered shipments "
        "are left out, as are sandbox shipments and recipients who restricted or objected. "
        "No name or address can be derived from it."
    ),
    responses=problem_responses(401, 403, 422),
)
async def deliveries_by_postcode_area(
    account_id: Annotated[uuid.UUID | None, Depends(report_scope)],
    session: SessionDep,
    period_from: Annotated[Day, Query(alias="from", description="First day (inclusive).")],
    period_to: Annotated[Day, Query(alias="to", description="Last day (inclusive).")],
) -> DeliveriesByPostcodeArea:
    if period_to < period_from:
        raise ValidationFailed.for_field("to", "must not be before from", location="query")
    if period_to - period_from > MAX_PERIOD:
        raise ValidationFailed.for_field("to", "a period is at most a year", location="query")
    return await service.deliveries_by_postcode_area(
        session, period_from=period_from, period_to=period_to, account_id=account_id
    )
