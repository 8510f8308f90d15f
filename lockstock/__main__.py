"""``python -m lockstock``: the ``lockstock`` command (apps/cli). Tests, the bench and
apps.supervise start workers this way; the CLI itself lives in the applications, above the core
(the layers contract in pyproject.toml exempts this one import)."""

from apps.cli import main

main()
