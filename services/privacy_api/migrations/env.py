"""Alembic environment of privacy_api."""

from libs.common.migrations import run_env
from services.privacy_api.models import Base

run_env(Base.metadata)
