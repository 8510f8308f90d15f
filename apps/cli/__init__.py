"""The `lockstock` command. Each subcommand lives in its own module; expected failures
(LockstockError) print one line and exit non-zero, never a traceback."""

from __future__ import annotations

import logging
import sys

import click

from lockstock.errors import LockstockError


class LockstockGroup(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except LockstockError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=LockstockGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]), help="Log verbosity.")
def cli(log_level: str) -> None:
    """lockstock: a Kafka-native inventory lock for live-stream sellers.

    Without KAFKA_BOOTSTRAP_SERVERS, commands that need Kafka start the embedded broker.
    """
    logging.basicConfig(level=getattr(logging, log_level.upper()), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main() -> None:
    from apps.cli import (  # noqa: F401  (registers commands)
        audit, bench, broker, connectors, demo, loadtest, registry, sheet, stock, topics, up, worker,
    )

    try:
        cli.main(prog_name="lockstock")
    except KeyboardInterrupt:
        sys.exit(130)
