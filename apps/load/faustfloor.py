"""Faust's own floor: the rate at which one worker's agent merely *receives* events, taking them
in batches exactly as the lock engine's agents do (``streams.take.take_batches``) and doing nothing with
them. Every order line crosses at least three such agent hops (order -> desk -> stock keeper ->
desk), so this rate divided by the events per line bounds what any Faust pipeline on this
machine can reach, whatever its logic costs. The bench reports it next to the broker's ceiling.
The agent runs in the engine's own app class (``streams.app.LockstockApp``), so the floor moves
with what the engine changes in Faust's path (streams/consumer.py).

Runs the agent in a child process (a Faust worker owns its event loop and its signals) and
stops it by PID; run as ``python -m apps.load.faustfloor BOOTSTRAP PROFILE TOPIC COUNT``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from apps.load.passthrough import load_bench_topic
from lockstock.errors import BrokerError
from lockstock.kafka import Kafka

FLOOR_TIMEOUT_S = 240.0
FIGURE_FILE = "floor.json"


def faust_floor(kafka: Kafka, messages: int = 60_000, progress=None) -> dict[str, Any]:
    topic = f"{kafka.settings.topic_prefix}.bench.faust-floor-in"
    load_bench_topic(kafka, topic, messages)
    if progress:
        progress(f"faust floor: {messages} records loaded, one Faust agent taking them ...")
    with tempfile.TemporaryDirectory(prefix="lockstock-floor-") as datadir:
        command = [sys.executable, "-m", "apps.load.faustfloor", kafka.bootstrap, kafka.profile.name, topic,
                   str(messages), datadir]
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        try:
            child.wait(timeout=FLOOR_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(10)
            raise BrokerError(f"the Faust floor agent took more than {FLOOR_TIMEOUT_S:.0f} s") from None
        figure = Path(datadir) / FIGURE_FILE
        if not figure.exists():
            raise BrokerError(f"the Faust floor agent exited {child.returncode} without a figure")
        return json.loads(figure.read_text())


def _run_agent(bootstrap: str, profile_name: str, topic_name: str, count: int, datadir: str) -> None:
    from lockstock.broker.profile import detect
    from streams.agents import BATCH_MAX
    from streams.app import LockstockApp
    from streams.take import take_batches

    profile = detect(bootstrap, profile_name)
    app = LockstockApp(f"lockstock-floor-{os.getpid()}", broker=profile.faust_broker_url(bootstrap), store="memory://",
                    datadir=datadir, key_serializer="raw", value_serializer="raw", web_enabled=False,
                    consumer_auto_offset_reset="earliest", autodiscover=False, **profile.faust)
    topic = app.topic(topic_name, key_type=bytes, value_type=bytes, internal=False)
    seen = {"events": 0, "started": 0.0, "cpu": 0.0}

    @app.agent(topic)
    async def take(stream: Any) -> None:
        async for events in take_batches(stream, BATCH_MAX):
            if not seen["events"]:
                seen["started"], seen["cpu"] = time.monotonic(), time.process_time()
            seen["events"] += len(events)
            if seen["events"] >= count:
                seconds = time.monotonic() - seen["started"]
                (Path(datadir) / FIGURE_FILE).write_text(json.dumps({
                    "events": seen["events"], "seconds": round(seconds, 2), "per_s": round(seen["events"] / seconds),
                    "cpu_s": round(time.process_time() - seen["cpu"], 2)}))  # a Faust worker swallows stdout
                os._exit(0)  # the figure is out; nothing to commit or hand over

    sys.argv = [sys.argv[0], "worker", "--loglevel", "error"]
    app.main()


if __name__ == "__main__":
    _bootstrap, _profile, _topic, _count, _datadir = sys.argv[1:6]
    _run_agent(_bootstrap, _profile, _topic, int(_count), _datadir)
