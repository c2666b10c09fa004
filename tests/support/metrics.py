"""Reading a service's ``/metrics`` text in tests and benchmarks."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families


def unlabelled_samples(text: str) -> dict[str, float]:
    """The value of every sample without labels, by sample name (``..._total`` for counters)."""
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }


def direct_writes(text: str) -> tuple[float, float]:
    """Writes sent without the ORM (shipment creates), and the round trips that carried them
    (0710): their ratio is how many went together."""
    samples = unlabelled_samples(text)
    return samples["db_direct_writes_total"], samples["db_direct_write_round_trips_total"]


async def scrape_direct_writes(
    client: httpx.AsyncClient, url: str = "/metrics"
) -> tuple[float, float]:
    """:func:`direct_writes` of the service ``client`` reaches at ``url``."""
    response = await client.get(url)
    assert response.status_code == 200
    return direct_writes(response.text)
