"""Production refuses privacy's development secrets."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.privacy_api.settings import DEV_BLIND_INDEX_KEY, PrivacySettings


@pytest.mark.parametrize("key", ["", DEV_BLIND_INDEX_KEY, "too-short"])
def test_production_needs_a_real_blind_index_key(key: str) -> None:
    with pytest.raises(ValidationError, match="PRIVACY_BLIND_INDEX_KEY"):
        PrivacySettings(environment="production", blind_index_key=key)


def test_production_accepts_a_real_key() -> None:
    settings = PrivacySettings(environment="production", blind_index_key="k" * 48)
    assert settings.blind_index_key == "k" * 48
