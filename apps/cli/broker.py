"""`lockstock broker`: run the embedded broker, or an Apache Kafka cluster, in the foreground."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Callable

import click

from apps.cli import cli
from lockstock.broker.embedded import EmbeddedBroker
from lockstock.settings import parse_port

APACHE_DATA_DIR = Path(".lockstock") / "apache-kafka"


@cli.command()
@click.option("--port", default="9092", show_default=True,
              help="TCP port on 127.0.0.1 (0 = any free port). With --apache: the first node's client port.")
@click.option("--apache", is_flag=True,
              help="Run Apache Kafka (KRaft, Java 17; jars fetched with Maven the first time) instead of tansu.")
@click.option("--nodes", default=None, metavar="N",
              help="With --apache: 1 (default) or 3 nodes (replication factor 3, min.insync.replicas 2).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help=f"With --apache: storage and logs, kept across runs [default: {APACHE_DATA_DIR}/<N>-node].")
def broker(port: str, apache: bool, nodes: str | None, data_dir: Path | None) -> None:
    """Run a broker on 127.0.0.1 until Ctrl-C / SIGTERM.

    Default: the embedded broker (tansu, memory only: stopping it loses all topics).
    --apache: Apache Kafka, whose data stays on disk in --data-dir and is there again at the
    next run (delete the dir to start empty). Point other lockstock commands at either with
    KAFKA_BOOTSTRAP_SERVERS.
    """
    number = parse_port(port, "--port", allow_zero=True)
    if not apache and (nodes is not None or data_dir is not None):
        raise click.UsageError("--nodes and --data-dir apply to Apache Kafka: add --apache")
    node_count = parse_nodes(nodes)
    if apache:
        run_apache(number, node_count, data_dir or APACHE_DATA_DIR / f"{node_count}-node")
        return
    stop = stop_on_signals()
    with EmbeddedBroker(port=number) as running:
        click.echo(f"embedded broker ready on {running.bootstrap} (pid {running.pid}, memory only)")
        click.echo(f"  export KAFKA_BOOTSTRAP_SERVERS={running.bootstrap}")
        hold(stop, lambda: None if running.process and running.process.poll() is None
             else "the embedded broker exited unexpectedly")
        click.echo("stopping embedded broker")


def parse_nodes(value: str | None) -> int:
    if value is None:
        return 1
    if value.strip() not in ("1", "3"):
        raise click.BadParameter(f"must be 1 or 3, got {value!r}", param_hint="--nodes")
    return int(value)


def stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def hold(stop: threading.Event, exited: Callable[[], str | None]) -> None:
    """Wait for ``stop``; a ClickException with ``exited()``'s message if what runs dies first."""
    while not stop.wait(0.5):
        failure = exited()
        if failure:
            raise click.ClickException(failure)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def run_apache(port: int, nodes: int, data_dir: Path) -> None:
    from lockstock.broker.apache import ApacheKafka
    from lockstock.broker.apache.cluster import CLUSTER_FILE

    def say(message: str) -> None:
        click.echo(message, err=True)

    data_dir = data_dir.resolve()
    reused = (data_dir / CLUSTER_FILE).exists()
    # Ctrl-C or SIGTERM while the jars resolve or the nodes boot: start() stops what it started.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupt)
    with ApacheKafka(nodes=nodes, work_dir=data_dir, port=port, progress=say) as running:
        stop = stop_on_signals()
        pids = ", ".join(f"node {n}: {pid}" for n, pid in running.pids.items())
        click.echo(f"Apache Kafka ready on {running.bootstrap} ({pids})")
        history = "from an earlier run: its topics and records are here" if reused else "new, kept after this run"
        click.echo(f"  data: {data_dir} ({history}; delete the dir to start empty)")
        click.echo(f"  logs: {running.log_dir}")
        click.echo(f"  export KAFKA_BOOTSTRAP_SERVERS={running.bootstrap}")
        hold(stop, lambda: next((f"Apache Kafka node {node_id} exited unexpectedly:\n{running.log_tail(node_id)}"
                                 for node_id, process in running.processes.items() if process.poll() is not None), None))
        click.echo("stopping Apache Kafka")
