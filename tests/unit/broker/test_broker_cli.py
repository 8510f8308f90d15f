"""`lockstock broker` options: --nodes and --data-dir belong to --apache."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from apps.cli import broker  # noqa: F401  (registers the command)
from apps.cli import cli


@pytest.mark.parametrize("args, message", [
    (["--nodes", "3"], "add --apache"),
    (["--data-dir", "somewhere"], "add --apache"),
    (["--apache", "--nodes", "2"], "must be 1 or 3"),
    (["--apache", "--nodes", "three"], "must be 1 or 3"),
    (["--apache", "--port", "70000"], "--port"),
])
def test_bad_options_are_usage_errors_before_anything_starts(args, message):
    result = CliRunner().invoke(cli, ["broker", *args])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_help_explains_the_apache_options():
    result = CliRunner().invoke(cli, ["broker", "--help"])
    assert result.exit_code == 0
    for option in ("--apache", "--nodes", "--data-dir", "--port"):
        assert option in result.output
