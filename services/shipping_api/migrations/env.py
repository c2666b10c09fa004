"""Alembic environment of shipping_api."""

from libs.common.migrations import run_env
from services.shipping_api.models import Base

run_env(Base.metadata)
