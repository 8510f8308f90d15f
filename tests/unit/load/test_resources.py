"""Worker CPU and memory from /proc, parsed as plain functions."""

from __future__ import annotations

import os
import time

from apps.load.resources import (
    CpuMeter, cpu_seconds_from_stat, per_10k_lines, process_cpu_s, process_rss_mb, rss_bytes_from_status,
)

# A real /proc/<pid>/stat line, whose command name holds a space and a parenthesis.
STAT = ("4242 (python -m (x)) S 1 4242 4242 0 -1 4194304 9000 0 0 0 1234 566 7 8 20 0 9 0 12345 "
        "2000000000 50000 18446744073709551615 1 1 0 0 0 0 0 16781312 16386 0 0 0 17 1 0 0 0 0 0")


def test_cpu_is_user_plus_system_ticks_whatever_the_command_name():
    assert cpu_seconds_from_stat(STAT, 100) == (1234 + 566) / 100  # children's 7 and 8 are not counted


def test_rss_is_read_from_vmrss():
    status = "Name:\tpython\nVmPeak:\t  900000 kB\nVmRSS:\t  204800 kB\nThreads:\t9\n"
    assert rss_bytes_from_status(status) == 204800 * 1024
    assert rss_bytes_from_status("Name:\tkthreadd\nThreads:\t1\n") is None


def test_cpu_per_10k_lines():
    assert per_10k_lines(3.0, 20_000) == 1.5
    assert per_10k_lines(None, 20_000) is None and per_10k_lines(1.0, 0) is None


def test_this_process_is_measured_and_a_gone_one_is_not():
    meter = CpuMeter([os.getpid()]).start()
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:
        pass
    assert meter.seconds() >= 0.03
    assert process_rss_mb(os.getpid()) > 1
    gone = 2**22 + 12345  # above the kernel's largest PID
    assert process_cpu_s(gone) is None and process_rss_mb(gone) is None
    assert CpuMeter([]).start().seconds() is None
