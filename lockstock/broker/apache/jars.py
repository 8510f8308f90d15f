"""The Apache Kafka jars, resolved from Maven Central once and kept in a cache directory.

The first start runs ``mvn dependency:copy-dependencies`` on pom.xml (next to this file) into a
staging directory and renames it to ``<cache>/jars`` when complete: a reader sees all the jars
or none. A lock file serialises processes that resolve at the same time (pytest-xdist, a test
and a ``lockstock broker`` together); the one that waited finds the jars there and uses them.
Later starts run no Maven and touch no network.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from lockstock.errors import BrokerError

KAFKA_VERSION = "4.4.0"  # keep in step with kafka.version in pom.xml
CACHE_ENV = "LOCKSTOCK_KAFKA_CACHE"
POM = Path(__file__).with_name("pom.xml")
STAMP = ".pom.sha256"  # inside the jars dir: which pom.xml they were resolved from
RESOLVE_TIMEOUT = 900.0
HEARTBEAT_SECONDS = 15.0

Progress = Callable[[str], None]


def cache_dir() -> Path:
    override = os.environ.get(CACHE_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or Path.home() / ".cache"
    return Path(base) / "lockstock" / f"kafka-{KAFKA_VERSION}"


def pom_hash() -> str:
    return hashlib.sha256(POM.read_bytes()).hexdigest()


def cached_jars(cache: Path | None = None) -> Path | None:
    """The resolved jars directory, if it is complete and matches the current pom.xml."""
    jars = (cache or cache_dir()) / "jars"
    try:
        return jars if (jars / STAMP).read_text().strip() == pom_hash() else None
    except OSError:
        return None


def resolve_jars(cache: Path | None = None, progress: Progress | None = None,
                 timeout: float = RESOLVE_TIMEOUT) -> Path:
    """The directory of the broker's jars; resolves them with Maven the first time."""
    cache = cache or cache_dir()
    say = progress or (lambda message: None)
    found = cached_jars(cache)
    if found:
        return found
    deadline = time.monotonic() + timeout
    cache.mkdir(parents=True, exist_ok=True)
    with _exclusive(cache / ".lock", deadline, say):
        found = cached_jars(cache)  # another process finished while we waited
        if found:
            return found
        say(f"resolving Apache Kafka {KAFKA_VERSION} jars from Maven Central into {cache} "
            "(first run only, ~45 MB)")
        started = time.monotonic()
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=cache))
        try:
            libs = _run_maven(staging, deadline, say)
            (libs / STAMP).write_text(pom_hash() + "\n")
            _replace_dir(libs, cache / "jars")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    jars = cache / "jars"
    count = sum(1 for _ in jars.glob("*.jar"))
    say(f"resolved {count} jars in {time.monotonic() - started:.0f}s: {jars}")
    return jars


def _run_maven(staging: Path, deadline: float, say: Progress) -> Path:
    mvn = shutil.which("mvn")
    if not mvn:
        raise BrokerError("Apache Kafka's jars are fetched with Maven the first time, and `mvn` is not "
                          "on PATH (Debian: apt-get install maven)")
    shutil.copyfile(POM, staging / "pom.xml")
    libs = staging / "libs"
    log_path = staging / "mvn.log"
    command = [mvn, "-B", "-f", str(staging / "pom.xml"), "dependency:copy-dependencies",
               f"-DoutputDirectory={libs}", "-DincludeScope=runtime"]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=staging)
        try:
            next_heartbeat = time.monotonic() + HEARTBEAT_SECONDS
            while process.poll() is None:
                if time.monotonic() > deadline:
                    raise BrokerError(f"Maven did not resolve the Kafka jars in time:\n{_tail(log_path)}")
                if time.monotonic() > next_heartbeat:
                    say(f"  still resolving... {_last_line(log_path)}")
                    next_heartbeat += HEARTBEAT_SECONDS
                time.sleep(0.2)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    if process.returncode != 0 or not any(libs.glob("kafka_2.13-*.jar")):
        raise BrokerError(f"Maven could not resolve the Kafka jars (exit {process.returncode}; is Maven "
                          f"Central reachable?):\n{_tail(log_path)}")
    return libs


def _replace_dir(new: Path, target: Path) -> None:
    """Swap a finished directory in; only an outdated one (another pom.xml) is ever there."""
    if target.exists():
        retired = target.with_name(f".retired-{uuid.uuid4().hex[:8]}")
        target.rename(retired)
        shutil.rmtree(retired, ignore_errors=True)
    new.rename(target)


@contextmanager
def _exclusive(path: Path, deadline: float, say: Progress) -> Iterator[None]:
    with open(path, "a") as handle:
        told = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise BrokerError(f"another process holds {path} (resolving the Kafka jars) for too long") from None
                if not told:
                    say(f"another process is resolving the Kafka jars; waiting for it ({path})")
                    told = True
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"


def _last_line(path: Path) -> str:
    lines = [line for line in _tail(path, 5).splitlines() if line.strip()]
    return lines[-1][:160] if lines else ""
