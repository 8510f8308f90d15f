"""`lockstock worker`: run the Faust lock engine."""

from __future__ import annotations

import logging
import time

import click

from lockstock.cli import cli
from lockstock.cli.options import settings_options
from lockstock.kafka import kafka_for
from lockstock.settings import Settings, parse_port

logger = logging.getLogger(__name__)


@cli.command()
@settings_options
@click.option("--web-port", help="Port of the worker's web views (/ready/, /stock/) [env LOCKSTOCK_WEB_PORT, default 6066].")
@click.option("--loglevel", default="info", show_default=True, type=click.Choice(["debug", "info", "warning", "error"]))
def worker(settings: Settings, web_port: str | None, loglevel: str) -> None:
    """Run the lock engine worker (Faust) until Ctrl-C / SIGTERM.

    Provisions missing topics first. Without KAFKA_BOOTSTRAP_SERVERS it starts the embedded
    broker for its own lifetime (memory only: state is gone when it stops). State stores
    live under LOCKSTOCK_DATA_DIR/faust.
    """
    if web_port is not None:
        settings = settings.with_(web_port=parse_port(web_port, "--web-port"))
    catalog = settings.catalog()  # a bad channels file is a one-line error before anything starts
    started = time.monotonic()
    with kafka_for(settings) as kafka:
        kafka.create_topics()
        from faust.worker import Worker

        from streams.app import create_app

        app = create_app(kafka)

        @app.on_rebalance_complete.connect
        async def _report_ready(*args, **kwargs) -> None:
            logger.info("lockstock worker ready in %.1fs", time.monotonic() - started)

        click.echo(
            f"lockstock worker: broker {kafka.bootstrap} ({kafka.profile.name} profile), "
            f"web http://{settings.web_host}:{settings.web_port}/ready/, data {settings.data_dir}, "
            f"catalog {catalog.source} ({len(catalog.regions)} regions, {len(catalog.channels)} channels)"
        )
        try:
            Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False).execute_from_commandline()
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise
