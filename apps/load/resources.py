"""What the workers cost, read from /proc for the worker processes the bench started: CPU
seconds (user + system, all threads, children not included) and resident memory. Linux only; on
another system, or for a process that is gone, the figures are None rather than a guess."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

PROC = Path("/proc")


def cpu_seconds_from_stat(stat: str, ticks_per_s: int) -> float:
    """utime + stime of a /proc/<pid>/stat line. The command name (field 2) is in parentheses and
    may hold spaces or parentheses itself, so the fields are counted after its last ')'."""
    fields = stat[stat.rindex(")") + 2:].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of the whole line
    return (utime + stime) / ticks_per_s


def rss_bytes_from_status(status: str) -> int | None:
    """VmRSS of a /proc/<pid>/status text, in bytes (None for a kernel thread or a zombie)."""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            number, unit = line.split()[1:3]
            return int(number) * {"kB": 1024, "mB": 1024**2, "gB": 1024**3}[unit]
    return None


def per_10k_lines(cpu_s: float | None, lines: int) -> float | None:
    if cpu_s is None or lines <= 0:
        return None
    return round(cpu_s * 10_000 / lines, 3)


def process_cpu_s(pid: int) -> float | None:
    try:
        return cpu_seconds_from_stat((PROC / str(pid) / "stat").read_text(), os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def process_rss_mb(pid: int) -> float | None:
    try:
        rss = rss_bytes_from_status((PROC / str(pid) / "status").read_text())
    except (OSError, ValueError, KeyError, IndexError):
        return None
    return None if rss is None else round(rss / 2**20, 1)


class CpuMeter:
    """CPU seconds the given processes spend between ``start()`` and ``seconds()``. None when a
    process went away in between (its CPU time went with it) or none was given."""

    def __init__(self, pids: Iterable[int]) -> None:
        self.pids = list(pids)
        self.before: dict[int, float | None] = {}

    def start(self) -> "CpuMeter":
        self.before = {pid: process_cpu_s(pid) for pid in self.pids}
        return self

    def seconds(self) -> float | None:
        if not self.pids:
            return None
        spent = 0.0
        for pid, before in self.before.items():
            after = process_cpu_s(pid)
            if before is None or after is None:
                return None
            spent += after - before
        return round(spent, 3)
