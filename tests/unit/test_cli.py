"""The command line: help for every command, one-line errors (no traceback) for bad settings."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from lockstock.cli import cli, main  # noqa: F401
from lockstock.cli import broker, demo, topics, worker  # noqa: F401  (register commands)


@pytest.mark.parametrize("command, expected", [
    (["broker", "--help"], "--port"),
    (["topics", "create", "--help"], "idempotent"),
    (["topics", "list", "--help"], "--json"),
    (["worker", "--help"], "--web-port"),
    (["demo", "--help"], "--json"),
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
    (["demo", "--orders", "0"], {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}, "--orders must be >= 1"),
])
def test_bad_settings_give_one_line_and_a_non_zero_exit(args, env, message):
    result = run(*args, env=env)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.stderr
