"""Wall-clock time as lockstock's schemas carry it: epoch milliseconds, UTC (timestamp-millis)."""

import time


def now_ms() -> int:
    return int(time.time() * 1000)
