"""``GET /v1/privacy/processing-activities``: the public Art. 30 register."""

from __future__ import annotations

from fastapi import APIRouter, Response

from services.privacy_api.register.schemas import ProcessingActivities
from services.privacy_api.register.service import register

router = APIRouter(prefix="/v1/privacy", tags=["processing activities"])


@router.get(
    "/processing-activities",
    response_model=ProcessingActivities,
    summary="The register of processing activities (AVG art. 30)",
    description="Purposes (the ten of the privacy statement), categories of personal data, "
    "legal bases, recipients, retention periods and sources. Public; no login needed.",
)
async def get_processing_activities(response: Response) -> ProcessingActivities:
    response.headers["Cache-Control"] = "public, max-age=3600"
    return register()
