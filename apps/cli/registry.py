"""`lockstock registry`: run a Confluent-compatible schema registry (Apicurio, in memory) in the
foreground, for trying SCHEMA_REGISTRY_URL without Docker."""

from __future__ import annotations

import click

from apps.cli import cli
from apps.cli.broker import hold, stop_on_signals
from lockstock.errors import RegistryError
from lockstock.registry_server import ApicurioRegistry


@cli.command()
def registry() -> None:
    """Run Apicurio Registry (in memory) on a free port of 127.0.0.1 until Ctrl-C / SIGTERM.

    The first run builds it from Maven Central (Java 17 and Maven, about a minute; cached in
    ~/.cache/lockstock/). Schemas are lost when it stops. Then, in another terminal:
    SCHEMA_REGISTRY_URL=<the printed url> lockstock topics create.
    """
    stop = stop_on_signals()
    click.echo("starting Apicurio Registry (the first run builds it from Maven Central) ...", err=True)
    try:
        running = ApicurioRegistry().start()
    except RegistryError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        click.echo(f"schema registry ready (pid {running.pid}, memory only)")
        click.echo(f"  export SCHEMA_REGISTRY_URL={running.url}")
        hold(stop, lambda: None if running.process and running.process.poll() is None
             else "the schema registry exited unexpectedly")
        click.echo("stopping schema registry")
    finally:
        running.stop()
