"""The applications, the top layer: the ``lockstock`` command (``cli/``), the war room
(``warroom/``), load runs, chaos and benches (``load/``), the outage stock sheet, the worker
supervisor, the HTTP client of a worker, the demo's simulated stream, the topic watcher and the
read-back of topics and engine state. They build on the engine (``streams/``), the connectors
(``connectors/``) and the shared core (``lockstock/``); nothing below imports them (the layers
contract in pyproject.toml)."""
