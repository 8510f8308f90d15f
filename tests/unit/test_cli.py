"""The command line: help for every command, one-line errors (no traceback) for bad settings."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from apps.cli import cli, main  # noqa: F401
from apps.cli import bench, broker, connectors, demo, loadtest, stock, topics, worker  # noqa: F401  (register commands)
from apps.cli.stock import parse_eta, parse_pairs
from lockstock.errors import SettingsError


@pytest.mark.parametrize("command, expected", [
    (["broker", "--help"], "--port"),
    (["topics", "create", "--help"], "idempotent"),
    (["topics", "list", "--help"], "--json"),
    (["worker", "--help"], "--web-port"),
    (["demo", "--help"], "--json"),
    (["stock", "set", "--help"], "--proportional"),
    (["stock", "show", "--help"], "--worker-url"),
    (["stock", "restock", "--help"], "--transit-id"),
    (["stock", "transfer", "--help"], "--from"),
    (["stock", "adjust", "--help"], "--reason"),
    (["stock", "limit", "--help"], "--per-buyer"),
    (["channel", "pause", "--help"], "--sku"),
    (["gateway", "--help"], "LOCKSTOCK_SHOPIFY_SECRET"),
    (["gateway", "--help"], "--port"),
    (["sync", "--help"], "--settle-ms"),
    (["sync", "--help"], "LOCKSTOCK_AMAZON_ACCESS_TOKEN"),
    *[(["bench", "--help"], knob) for knob in ("--workers", "--orders", "--rates", "--rate-seconds",
                                                "--passthrough-messages", "--json")],
    *[(["loadtest", "--help"], knob) for knob in ("--rate", "--duration", "--shape", "--channels", "--skus",
                                                   "--stock-per-sku", "--zipf", "--multi-line", "--duplicates",
                                                   "--cancellations", "--buyers", "--max-qty", "--seed", "--json",
                                                   "--chaos", "--workers", "--kills")],
])
def test_help_texts(command, expected):
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 0, result.output
    assert expected in result.output


def test_topics_list_prints_a_table_and_json():
    table = CliRunner().invoke(cli, ["topics", "list"], env={"LOCKSTOCK_TOPIC_PREFIX": "shop7"})
    assert table.exit_code == 0 and "shop7.channels.stock" in table.output and "compact" in table.output
    as_json = CliRunner().invoke(cli, ["topics", "list", "--json"])
    assert '"topic": "lockstock.orders.placed"' in as_json.output


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lockstock", *args], capture_output=True, text=True, timeout=60,
        env={**os.environ, **env},
    )


@pytest.mark.parametrize("args, env, message", [
    (["broker", "--port", "70000"], {}, "--port must be <= 65535"),
    (["broker", "--port", "x"], {}, "--port must be a whole number"),
    (["worker", "--web-port", "-1"], {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}, "--web-port must be >= 1"),
    (["topics", "create"], {"KAFKA_BOOTSTRAP_SERVERS": "not-a-host-port"}, "is not host:port"),
    (["topics", "create"], {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}, "cannot reach Kafka at 127.0.0.1:1"),
    (["worker"], {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}, "cannot reach Kafka at 127.0.0.1:1"),
    (["topics", "list"], {"LOCKSTOCK_PARTITIONS": "0"}, "partitions must be >= 1"),
    (["demo", "--orders", "0"], {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}, "--orders must be >= 100"),
    (["gateway", "--port", "0"], {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}, "--port must be >= 1"),
    (["gateway"], {"KAFKA_BOOTSTRAP_SERVERS": ""}, "cannot serve webhooks on a throwaway embedded broker"),
    (["sync", "--max-attempts", "0"], {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}, "--max-attempts must be >= 1"),
    (["sync", "--settle-ms", "-5"], {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}, "--settle-ms must be >= 0"),
    (["sync"], {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}, "cannot reach Kafka at 127.0.0.1:1"),
    (["loadtest", "--rate", "-5"], {}, "--rate must be between"),
    (["bench", "--rates", "500,x"], {}, "--rates must be whole numbers"),
    (["bench", "--workers", "0"], {}, "--workers must be >= 1"),
    (["bench", "--orders", "5"], {}, "--orders must be >= 1000"),
    (["loadtest", "--multi-line", "1.5"], {}, "--multi-line must be a share between 0 and 1"),
    (["loadtest", "--duplicates", "lots"], {}, "--duplicates must be a number"),
    (["loadtest", "--channels", "myspace"], {}, "--channels: myspace not in the catalog"),
    (["loadtest", "--chaos", "--workers", "0"], {}, "--workers must be"),
    (["loadtest", "--chaos", "--kills", "-1"], {}, "--kills must be"),
    (["demo", "--seconds", "5"], {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}, "--seconds must be >= 10"),
    (["stock", "set", "SKU-1", "--total", "3000", "--regions", "US=1200,EU=1000,SEA=800", "--flex-pct", "20"],
     {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}, "= 3600, more than the 3000 units that exist"),
    (["stock", "set", "SKU-1", "--total", "-5"], {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}, "--total must be >= 0"),
    (["stock", "set", "SKU-1", "--total", "10", "--regions", "MARS=5"], {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"},
     "unknown region(s) MARS"),
    (["stock", "set", "SKU-1", "--total", "10", "--flex-pct", "120"], {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"},
     "--flex-pct must be 0-100"),
    (["stock", "set", "SKU-1", "--total", "3000"], {}, "KAFKA_BOOTSTRAP_SERVERS is not set"),
    (["stock", "transfer", "SKU-1", "--qty", "0", "--from", "US", "--to", "EU"], {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"},
     "--qty must be >= 1"),
    (["stock", "limit", "SKU-1"], {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}, "exactly one of --per-buyer N or --clear"),
    (["stock", "restock", "SKU-1", "--qty", "5", "--eta", "soonish"], {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"},
     "neither ISO 8601"),
    (["channel", "pause", "nope-xx", "--sku", "A"], {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}, "unknown channel 'nope-xx'"),
    (["stock", "show", "SKU-1", "--worker-url", "http://127.0.0.1:1"], {}, "no lockstock worker answers"),
    (["worker"], {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "LOCKSTOCK_CHANNELS_FILE": "/nonexistent.yaml"},
     "cannot read channels file /nonexistent.yaml"),
])
def test_bad_settings_give_one_line_and_a_non_zero_exit(args, env, message):
    result = run(*args, env=env)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_parse_pairs_and_eta():
    assert parse_pairs("US=1200, EU=1000,SEA=800", "--regions") == {"US": 1200, "EU": 1000, "SEA": 800}
    assert parse_pairs("", "--regions") == {}
    for bad, message in (("US", "is not NAME=UNITS"), ("US=1,US=2", "given twice"), ("US=-3", "must be >= 0")):
        with pytest.raises(SettingsError, match=message):
            parse_pairs(bad, "--regions")
    assert parse_eta("2026-11-26T08:00") == 1795680000000
    assert parse_eta("2026-11-26T08:00+08:00") == 1795680000000 - 8 * 3600 * 1000
    import time
    assert abs(parse_eta("36h") - (time.time() + 36 * 3600) * 1000) < 5000
