"""Reading the engine's state back from the stock changelog, with no worker involved."""

from __future__ import annotations

import pytest

from apps.client import LockstockClient as Client
from apps.readback import stock_states
from apps.supervise import fetch_json

pytestmark = [pytest.mark.integration, pytest.mark.both_brokers]


def test_stock_states_from_the_changelog_equal_the_workers_live_state(kafka, workers):
    worker = workers.start()
    worker.wait_ready()
    client = Client(kafka)
    client.set_stock("RB-A", 40, {"US": 20, "EU": 20}, flex_pct=0)
    client.set_stock("RB-B", 10, {"US": 10}, flex_pct=0)
    client.flush()
    ids = {f"rb-{i}" for i in range(30)}
    for i in range(30):  # a burst, so the changelog holds multi-record batches
        client.place_order(f"rb-{i}", [("RB-A" if i % 3 else "RB-B", 1)], region="US" if i % 2 else "EU",
                           buyer=f"b{i}")
    client.flush()
    client.decisions(ids)
    seen: list[tuple[int, int]] = []
    states = stock_states(kafka, progress=lambda read, total: seen.append((read, total)))
    assert set(states) == {"RB-A", "RB-B"}
    for sku, state in states.items():
        status, live = fetch_json(f"{worker.url}/stock/{sku}/")
        assert status == 200
        assert state.public_view() == live
    assert seen and seen[-1][0] == seen[-1][1] > 0
