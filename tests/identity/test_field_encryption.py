"""Field encryption (AES-GCM with key ids) and the secrets identity refuses in production."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from libs.common.crypto import DecryptionError, FieldCipher, generate_key
from services.identity_api.settings import IdentitySettings


def test_a_value_carries_its_key_id_and_opens_after_rotation() -> None:
    old, new = generate_key(), generate_key()
    before = FieldCipher.from_base64({"2025": old}, "2025")
    sealed = before.encrypt("NL91ABNA0417164300", context="accounts.iban:1")
    assert sealed.startswith("aesgcm:2025:")
    after = FieldCipher.from_base64({"2025": old, "2026": new}, "2026")
    assert after.decrypt(sealed, context="accounts.iban:1") == "NL91ABNA0417164300"
    assert after.needs_rotation(sealed)
    resealed = after.encrypt("NL91ABNA0417164300", context="accounts.iban:1")
    assert after.key_id_of(resealed) == "2026"
    assert not after.needs_rotation(resealed)


def test_same_value_encrypts_differently_each_time() -> None:
    cipher = FieldCipher.from_base64({"k": generate_key()}, "k")
    assert cipher.encrypt("x") != cipher.encrypt("x")


def test_a_value_moved_to_another_row_or_altered_does_not_open() -> None:
    cipher = FieldCipher.from_base64({"k": generate_key()}, "k")
    sealed = cipher.encrypt("NL91ABNA0417164300", context="accounts.iban:1")
    with pytest.raises(DecryptionError):
        cipher.decrypt(sealed, context="accounts.iban:2")
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(DecryptionError):
        cipher.decrypt(tampered, context="accounts.iban:1")


def test_a_value_of_a_removed_key_says_so() -> None:
    sealed = FieldCipher.from_base64({"gone": generate_key()}, "gone").encrypt("x")
    with pytest.raises(DecryptionError, match="gone"):
        FieldCipher.from_base64({"k": generate_key()}, "k").decrypt(sealed)


def test_development_defaults_are_used_outside_production() -> None:
    settings = IdentitySettings(environment="development")
    assert settings.field_encryption_active_key == "dev-only"
    assert settings.service_clients["shipping_api"].secret == "dev-only-shipping_api"


def production(**values: object) -> IdentitySettings:
    base: dict[str, object] = {
        "environment": "production",
        "field_encryption_keys": {"2026-01": generate_key()},
        "hash_key": generate_key(),
        "service_clients": {
            "shipping_api": {"secret": "s" * 32, "scopes": ["internal:introspect"]}
        },
    }
    return IdentitySettings(**{**base, **values})  # type: ignore[arg-type]


def test_production_with_real_secrets_starts() -> None:
    assert production().field_encryption_active_key == "2026-01"


@pytest.mark.parametrize(
    "values",
    [
        {"field_encryption_keys": {}},
        {"field_encryption_keys": {"dev-only": generate_key()}},
        {"hash_key": ""},
        {"service_clients": {"shipping_api": {"secret": "dev-only-shipping_api",
                                              "scopes": ["internal:introspect"]}}},
    ],
)  # fmt: skip
def test_production_refuses_development_secrets(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        production(**values)


def test_a_key_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(ValidationError):
        production(field_encryption_keys={"short": "c2hvcnQ="})
