"""`lockstock up` and `lockstock demo --war-room`: every number checked before anything starts,
one-line errors, and the environment `up` tells other terminals to use."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from apps.cli import cli
from apps.cli import demo, up  # noqa: F401  (register commands)
from apps.cli.up import _env_for_others
from lockstock.settings import Settings


@pytest.mark.parametrize("command, expected", [
    (["up", "--help"], "--web-port"), (["up", "--help"], "--workers"), (["up", "--help"], "--demo"),
    (["demo", "--help"], "--war-room"),
])
def test_help_names_every_option(command, expected):
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 0 and expected in result.output


@pytest.mark.parametrize("args, message", [
    (["up", "--web-port", "70000"], "--web-port must be <= 65535"),
    (["up", "--web-port", "http"], "--web-port must be a whole number"),
    (["up", "--workers", "0"], "--workers must be >= 1"),
    (["up", "--workers", "many"], "--workers must be a whole number"),
    (["up", "--demo", "--demo-seconds", "5"], "--demo-seconds must be >= 10"),
    (["up", "--demo", "--channels-file", "lockstock/catalog.yaml"], "--demo plays with its own catalog"),
    (["demo", "--war-room", "0"], "--war-room must be >= 1"),
])
def test_bad_numbers_are_one_line_errors(args, message, monkeypatch):
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0 and message in result.output, result.output
    assert "Traceback" not in result.output


def test_a_taken_war_room_port_is_refused_before_anything_starts(monkeypatch):
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["up", "--web-port", str(port)])
    assert result.exit_code != 0 and f"port {port} on 127.0.0.1 is taken" in result.output


def test_other_terminals_are_told_only_what_differs_from_the_defaults():
    assert _env_for_others(Settings(bootstrap_servers="127.0.0.1:9092")) == "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092"
    custom = Settings(bootstrap_servers="127.0.0.1:9092", topic_prefix="show", partitions=8,
                      channels_file=Path("mine.yaml"))
    assert _env_for_others(custom) == ("KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 LOCKSTOCK_TOPIC_PREFIX=show "
                                       "LOCKSTOCK_PARTITIONS=8 LOCKSTOCK_CHANNELS_FILE=mine.yaml")
