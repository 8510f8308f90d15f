"""The Grafana dashboard and docs/metrics.md name every metric the processes serve, and only those."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

from lockstock.metrics.gateway import GatewayMetrics
from lockstock.metrics.sync import SyncMetrics
from lockstock.metrics.worker import WorkerMetrics

DOCS = Path(__file__).resolve().parents[3] / "docs"
SUFFIXES = ("_bucket", "_count", "_sum", "_total")


def served_families() -> set[str]:
    worker = WorkerMetrics()
    worker.watch_consumer(lambda: None, frozenset)
    registries = [worker.registry, GatewayMetrics({"generic"}, Counter).registry,
                  SyncMetrics(SimpleNamespace(lanes={}, caught_up=False)).registry]
    return {family.name for registry in registries for family in registry.collect()}


def family_of(sample_name: str) -> str:
    for suffix in SUFFIXES:
        if sample_name.endswith(suffix):
            return sample_name[: -len(suffix)]
    return sample_name


def named_in(text: str) -> set[str]:
    return {family_of(name) for name in re.findall(r"lockstock_[a-z_]+", text)}


def test_the_dashboard_has_a_prometheus_datasource_variable_and_charts_every_metric():
    dashboard = json.loads((DOCS / "grafana" / "lockstock.json").read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert all(p["datasource"]["uid"] == "${datasource}" for p in dashboard["panels"] if p.get("targets"))
    charted = named_in("\n".join(exprs))
    served = served_families()
    assert charted == served


def test_metrics_md_lists_every_metric_served():
    listed = named_in((DOCS / "metrics.md").read_text())
    assert listed == served_families()
