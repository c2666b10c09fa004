"""Alembic environment of identity_api."""

from libs.common.migrations import run_env
from services.identity_api.models import Base

run_env(Base.metadata)
