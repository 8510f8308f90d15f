"""`lockstock broker`: run the embedded Kafka-protocol broker in the foreground."""

from __future__ import annotations

import signal
import threading

import click

from lockstock.broker.embedded import EmbeddedBroker
from lockstock.cli import cli
from lockstock.settings import parse_port


@cli.command()
@click.option("--port", default="9092", show_default=True, help="TCP port on 127.0.0.1 (0 = any free port).")
def broker(port: str) -> None:
    """Run the embedded broker (tansu, memory only) on 127.0.0.1 until Ctrl-C / SIGTERM.

    Everything is kept in memory: stopping the broker loses all topics. Point other
    lockstock commands at it with KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:PORT.
    """
    number = parse_port(port, "--port", allow_zero=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with EmbeddedBroker(port=number) as running:
        click.echo(f"embedded broker ready on {running.bootstrap} (pid {running.pid}, memory only)")
        click.echo(f"  export KAFKA_BOOTSTRAP_SERVERS={running.bootstrap}")
        while not stop.wait(0.5):
            if running.process is None or running.process.poll() is not None:
                raise click.ClickException("the embedded broker exited unexpectedly")
        click.echo("stopping embedded broker")
