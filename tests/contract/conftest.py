"""The platform the contract runs fuzz: real processes of its own, and real credentials.

Not the session's shared ``stack``: a fuzzer from one address is exactly what the rate limits
stop (its 429s would leak into every later end-to-end test) and it fills the databases with
thousands of objects. This stack raises the limits (they have their own tests in
``tests/security``) and uses cheap password hashing, as the unit tests do.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.platform_credentials import Credentials, issue_credentials
from tests.support.stack import Stack, running_stack

UNLIMITED = "1000000/minute"

CONTRACT_ENV = {
    "IDENTITY_PASSWORD_TIME_COST": "1",
    "IDENTITY_PASSWORD_MEMORY_COST_KIB": "1024",
    "IDENTITY_PASSWORD_PARALLELISM": "1",
    "IDENTITY_LOGIN_FAILURES_PER_ACCOUNT": UNLIMITED,
    "IDENTITY_LOGIN_FAILURES_PER_IP": UNLIMITED,
    "IDENTITY_MAIL_REQUESTS_PER_ADDRESS": UNLIMITED,
    "IDENTITY_REGISTRATIONS_PER_IP": UNLIMITED,
    "SHIPPING_TRACKING_RATE_LIMIT": UNLIMITED,
    "SHIPPING_TRACKING_POSTCODE_RATE_LIMIT": UNLIMITED,
    "PRIVACY_REQUEST_CREATE_LIMIT": UNLIMITED,
    "PRIVACY_REQUEST_CREATE_PER_EMAIL_LIMIT": UNLIMITED,
    "PRIVACY_VERIFY_LIMIT": UNLIMITED,
    "RATE_LIMIT_PER_ACCOUNT": UNLIMITED,
    "RATE_LIMIT_PER_IP": UNLIMITED,
    "LOG_LEVEL": "WARNING",
}


@pytest.fixture(scope="module")
def contract_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base: Path = tmp_path_factory.mktemp("contract-stack")
    with running_stack(base, suffix="contract", extra_env=CONTRACT_ENV) as stack:
        yield stack


@pytest.fixture(scope="module")
def contract_credentials(contract_stack: Stack) -> Credentials:
    return issue_credentials(contract_stack, label="contract")
