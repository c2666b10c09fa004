"""Tables of privacy_api (schema ``privacy`` on PostgreSQL)."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from libs.common.db import TYPE_ANNOTATION_MAP, new_metadata
from libs.common.request_log import RequestLogMixin


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


class RequestLog(RequestLogMixin, Base):
    """Requests of authenticated account holders to this service (privacy statement: Logs)."""

    __tablename__ = "request_log"
