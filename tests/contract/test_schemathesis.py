"""Contract tests: schemathesis (v4 CLI) against every service's own OpenAPI document, on the
running services, authenticated as every kind of caller, with every check (schemathesis'
default; the few an operation is exempt from are written down with their reasons), positive and
negative data, the examples, coverage, fuzzing and stateful phases, and a fixed seed. Zero
failures allowed.

One run per service and caller, over the operations that caller may use (the access matrix,
``tests/support/access_matrix.py``): an account holder's login, an API key per scope (live)
and one in test mode, support, privacy officer and admin staff, each service's own token on
``/internal`` routes, and no credentials on public routes. What each status of a rejection
means where the schema cannot say it (an unknown token, a wrong password, a check digit) is
written down per operation in ``schemathesis.toml`` beside this file.

The runs go in parallel (a few at a time); runs that may disable staff users or erase
subjects whose credentials other runs use go last.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from libs.common.auth import Role
from services.gateway.openapi import service_documents
from tests.support.access_matrix import RULES, STAFF, Access, Caller, Rule
from tests.support.platform_credentials import Credentials
from tests.support.shipping_factories import shipment_body
from tests.support.stack import ROOT, Stack

pytestmark = pytest.mark.e2e

SEED = 20261125
MAX_EXAMPLES = 30
PARALLEL_RUNS = 3
CONFIG = Path(__file__).with_name("schemathesis.toml")
REASON = "Contract test run: checking the API (ticket 1)"
TEST_MODE_KEY = "api_key:test"
"""A ``pp_test_`` key with every scope, on what test mode changes: sandbox shipments, their
labels and the simulate route."""
SANDBOX_PATHS = ("/v1/shipments", "/v1/labels")


@dataclass(frozen=True)
class ContractRun:
    service: str
    caller: str
    operations: tuple[str, ...]
    headers: tuple[tuple[str, str], ...] = ()
    last: bool = False
    """Runs after all others: it may disable staff or erase subjects others authenticate as."""

    @property
    def name(self) -> str:
        return f"{self.service}-{self.caller}"

    @property
    def phases(self) -> str:
        """The stateful phase where the run holds both ends of an OpenAPI link."""
        selected = set(self.operations)
        linked = any(a in selected and b in selected for a, b in LINKS[self.service])
        return "examples,coverage,fuzzing" + (",stateful" if linked else "")


def _exercises(rule: Rule, caller: Caller) -> bool:
    """Whether ``caller``'s run covers a route. Public routes run without credentials only;
    the others with every caller they serve."""
    if rule.access in {Access.PUBLIC, Access.OWN_CREDENTIAL}:
        return caller is Caller.ANONYMOUS
    return caller in rule.allowed or (rule.token_from_link and caller is Caller.ANONYMOUS)


DOCUMENTS = service_documents()
METHODS = {"get", "put", "post", "patch", "delete"}


def documented_operations() -> dict[str, set[tuple[str, str]]]:
    """(method, path) of every operation in each service's own OpenAPI document."""
    return {
        service: {
            (method.upper(), path)
            for path, item in document["paths"].items()
            for method in item
            if method in METHODS
        }
        for service, document in DOCUMENTS.items()
    }


def declared_links(service: str) -> set[tuple[str, str]]:
    """(source, target) operation names of the document's OpenAPI links."""
    links: set[tuple[str, str]] = set()
    for path, item in DOCUMENTS[service]["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            for response in operation.get("responses", {}).values():
                for link in response.get("links", {}).values():
                    pointer, _, target_method = link["operationRef"].rpartition("/")
                    target = pointer.removeprefix("#/paths/").replace("~1", "/")
                    target = target.replace("~0", "~")
                    links.add((f"{method.upper()} {path}", f"{target_method.upper()} {target}"))
    return links


DOCUMENTED = documented_operations()
LINKS = {service: declared_links(service) for service in DOCUMENTS}


def contract_runs() -> list[ContractRun]:
    runs: list[ContractRun] = []
    for service, rules in RULES.items():
        documented = {key: rule for key, rule in rules.items() if key in DOCUMENTED[service]}
        for caller in Caller:
            operations = tuple(
                f"{method} {path}"
                for (method, path), rule in sorted(documented.items())
                if _exercises(rule, caller)
            )
            if not operations:
                continue
            headers: tuple[tuple[str, str], ...] = ()
            if (service == "shipping" and caller in {Caller.SUPPORT, Caller.ADMIN}) or (
                service == "identity" and caller in STAFF
            ):
                headers = (("X-Access-Reason", REASON),)
            last = service == "identity" and (caller is Caller.ADMIN or caller.is_service)
            runs.append(ContractRun(service, caller.value, operations, headers, last))
        key_operations = tuple(
            f"{method} {path}"
            for (method, path), rule in sorted(documented.items())
            if any(caller.is_api_key and caller in rule.allowed for caller in Caller)
            and path.startswith(SANDBOX_PATHS)
        )
        if key_operations:
            runs.append(ContractRun(service, TEST_MODE_KEY, key_operations))
    return runs


RUNS = contract_runs()


def bearer_for(credentials: Credentials, caller: str, service: str) -> str | None:
    holder = credentials.holder if service != "identity" else credentials.holders[1]
    if caller == Caller.ANONYMOUS:
        return None
    if caller == Caller.ACCOUNT_HOLDER:
        return holder.access_token
    if caller == TEST_MODE_KEY:
        return holder.api_key("all", mode="test")
    if caller.startswith("api_key:"):
        return holder.api_key(caller.removeprefix("api_key:"))
    if caller.startswith("service:"):
        return credentials.services[caller.removeprefix("service:")]
    return credentials.staff[Role(caller)]


@dataclass
class RunResult:
    command: list[str]
    returncode: int
    output: str
    seconds: float


def known_objects(
    run: ContractRun, credentials: Credentials, shipment: dict[str, str]
) -> dict[str, str]:
    """Path parameters that name real objects for runs that cannot create them (staff, services,
    the public): half the generated cases use one, so the fuzzer gets past 404."""
    account = str(credentials.holder.account_id)
    if run.service == "shipping" and run.caller in {Caller.SUPPORT, Caller.ADMIN}:
        return {"shipment_id": shipment["id"]}
    if run.service == "shipping" and run.caller == Caller.KEY_SHIPMENTS_READ:
        return {"shipment_id": shipment["id"]}
    if run.service == "shipping" and run.caller == Caller.ANONYMOUS:
        return {"tracking_code": shipment["tracking_code"]}
    if run.service == "identity" and run.caller in {"support", "privacy_officer", "admin"}:
        return {"account_id": account, "staff_id": str(credentials.staff_ids[Role.SUPPORT])}
    if run.service == "identity" and run.caller.startswith("service:"):
        return {"account_id": account}
    return {}


def run_config(known: dict[str, str]) -> str:
    """The shared configuration, plus dictionaries of the run's known objects."""
    text = CONFIG.read_text(encoding="utf-8")
    for name, value in known.items():
        text += f'\n[dictionaries.{name}]\nvalues = ["{value}"]\n'
    if known:
        text += "\n[parameters]\n"
        for name in known:
            text += f'"path.{name}" = {{ dictionary = "{name}", probability = 0.5 }}\n'
    return text


@dataclass
class ContractRunner:
    """Starts every run at once (a few at a time) so the parametrised tests only collect."""

    stack: Stack
    credentials: Credentials
    workdir: Path
    shipment: dict[str, str]
    results: dict[str, Future[RunResult]] = field(default_factory=dict)

    def start(self, selected: set[str]) -> None:
        runs = [run for run in RUNS if run.name in selected]
        self.results = {run.name: Future() for run in runs}
        threading.Thread(target=self._work, args=(runs,), name="contract-runs", daemon=True).start()

    def _work(self, runs: list[ContractRun]) -> None:
        with ThreadPoolExecutor(PARALLEL_RUNS) as pool:
            for last in (False, True):
                # Longest first, so the slow runs do not start last.
                batch = sorted(
                    (run for run in runs if run.last is last),
                    key=lambda run: (run.service != "shipping", -len(run.operations)),
                )
                for run, outcome in zip(batch, pool.map(self._attempt, batch), strict=True):
                    self.results[run.name].set_result(outcome)

    def _attempt(self, run: ContractRun) -> RunResult:
        try:
            return self.execute(run)
        except Exception as exc:  # reported by the run's own test
            return RunResult([], -1, f"{type(exc).__name__}: {exc}", 0.0)

    def command(self, run: ContractRun, report_dir: Path) -> list[str]:
        command = [
            str(Path(sys.executable).parent / "schemathesis"),
            "--config-file",
            str(report_dir / "schemathesis.toml"),
            "run",
            f"{self.stack.service_url(run.service)}/openapi.json",
            "--mode",
            "all",
            "--phases",
            run.phases,
            "--seed",
            str(SEED),
            "--max-examples",
            str(MAX_EXAMPLES),
            "--request-timeout",
            "20",
            "--report",
            "junit",
            "--report-dir",
            str(report_dir),
            "--no-color",
        ]
        for operation in run.operations:
            command += ["--include-name", operation]
        token = bearer_for(self.credentials, run.caller, run.service)
        if token is not None:
            command += ["-H", f"Authorization: Bearer {token}"]
        for name, value in run.headers:
            command += ["-H", f"{name}: {value}"]
        return command

    def execute(self, run: ContractRun) -> RunResult:
        report_dir = self.workdir / run.name
        report_dir.mkdir(parents=True, exist_ok=True)
        known = known_objects(run, self.credentials, self.shipment)
        (report_dir / "schemathesis.toml").write_text(run_config(known), encoding="utf-8")
        command = self.command(run, report_dir)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        started = time.monotonic()
        result = subprocess.run(
            command,
            cwd=report_dir,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        return RunResult(
            command, result.returncode, result.stdout + result.stderr, time.monotonic() - started
        )


def existing_shipment(stack: Stack, credentials: Credentials) -> dict[str, str]:
    response = httpx.post(
        f"{stack.service_url('shipping')}/v1/shipments",
        json=shipment_body(),
        headers={"Authorization": f"Bearer {credentials.holder.api_key('all')}"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    created = response.json()
    return {"id": created["id"], "tracking_code": created["tracking_code"]}


@pytest.fixture(scope="module")
def contract_runner(
    request: pytest.FixtureRequest,
    contract_stack: Stack,
    contract_credentials: Credentials,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ContractRunner]:
    # Only the runs whose tests were selected (``-k``): each takes seconds to a minute.
    selected = {
        item.callspec.params["run"].name
        for item in request.session.items
        if hasattr(item, "callspec") and "run" in item.callspec.params
    }
    runner = ContractRunner(
        contract_stack,
        contract_credentials,
        tmp_path_factory.mktemp("st"),
        shipment=existing_shipment(contract_stack, contract_credentials),
    )
    runner.start(selected)
    yield runner
    for future in runner.results.values():
        future.result(timeout=900)


@pytest.mark.parametrize("run", RUNS, ids=[run.name for run in RUNS])
def test_service_honours_its_openapi_document(
    contract_runner: ContractRunner, run: ContractRun
) -> None:
    result = contract_runner.results[run.name].result(timeout=900)
    summary = result.output[-12000:]
    assert result.returncode == 0, f"{run.name} ({result.seconds:.0f}s):\n{summary}"
    assert "Tested:" in result.output, summary


def test_every_contract_run_covers_operations_of_its_service() -> None:
    """Every documented operation is exercised by at least one run (no route escapes)."""
    covered = {(run.service, operation) for run in RUNS for operation in run.operations}
    documented = {
        (service, f"{method} {path}")
        for service, operations in DOCUMENTED.items()
        for method, path in operations
    }
    assert documented == covered


def test_every_paged_operation_may_refuse_a_cursor_it_did_not_issue() -> None:
    """Cursors are opaque (libs.common.pagination): the configuration must list every list."""
    configured = tomllib.loads(CONFIG.read_text(encoding="utf-8"))
    allowed_422 = set(configured["operations"][0]["include-name"])
    paged = {
        f"{method.upper()} {path}"
        for document in DOCUMENTS.values()
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS and any(p["name"] == "cursor" for p in operation.get("parameters", []))
    }
    assert paged <= allowed_422
