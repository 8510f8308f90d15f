"""Run a real, Confluent-compatible schema registry for tests: Apicurio Registry 2.x with its
in-memory storage (H2), built from Maven Central by ``apicurio-registry.pom.xml`` (see there
why it is rebuilt rather than downloaded) and run with ``java`` on a free local port.

The build is cached under ``~/.cache/lockstock/apicurio-<version>/`` (``LOCKSTOCK_REGISTRY_CACHE``
overrides the root): the first run needs Maven and network (about a minute with a fast link); later runs
start in seconds. A file lock lets two test sessions share one build.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import IO

from lockstock.broker.embedded import free_port
from lockstock.errors import RegistryError
from lockstock.processes import terminate

logger = logging.getLogger(__name__)

POM = Path(__file__).with_name("apicurio-registry.pom.xml")
CACHE_ENV = "LOCKSTOCK_REGISTRY_CACHE"
CCOMPAT_PATH = "/apis/ccompat/v7"  # Apicurio 2.x serves the Confluent API as v6 and v7
BUILD_TIMEOUT_S = 900.0  # the first build downloads ~230 MB of jars and Maven plugins
START_TIMEOUT_S = 60.0
JVM_OPTIONS = (
    "-Xmx256m",
    "-XX:+UseSerialGC",  # two shared cores: no parallel collector threads fighting the tests
    "-XX:TieredStopAtLevel=1",  # a test registry lives for a minute: start fast, peak speed irrelevant
)


def apicurio_version(pom: Path = POM) -> str:
    """The Apicurio version the POM builds (the POM is the one place that names it)."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    found = ET.parse(pom).getroot().find("m:properties/m:apicurio.version", ns)
    if found is None or not (found.text or "").strip():
        raise RegistryError(f"{pom} names no apicurio.version")
    return found.text.strip()


def cache_root() -> Path:
    configured = os.environ.get(CACHE_ENV, "").strip()
    return Path(configured) if configured else Path.home() / ".cache" / "lockstock"


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class _FileLock:
    """An exclusive flock, waited for with a deadline (another session may be mid-build)."""

    def __init__(self, path: Path, timeout: float) -> None:
        self.path, self.timeout = path, timeout
        self._file: IO | None = None

    def __enter__(self) -> "_FileLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a")
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if time.monotonic() > deadline:
                    self._file.close()
                    raise RegistryError(f"another process held {self.path} for over {self.timeout:.0f}s") from None
                time.sleep(0.5)

    def __exit__(self, *exc: object) -> None:
        assert self._file is not None
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()


def build_registry(cache: Path | None = None, timeout: float = BUILD_TIMEOUT_S) -> Path:
    """The runnable registry jar, built once per POM content; idempotent and safe to call from
    concurrent processes. RegistryError (with Maven's log tail) if the build fails."""
    home = (cache or cache_root()) / f"apicurio-{apicurio_version()}"
    app = home / "app"
    digest = hashlib.sha256(POM.read_bytes()).hexdigest()
    with _FileLock(home.with_name(home.name + ".lock"), timeout):
        if (app / "pom.sha256").is_file() and (app / "pom.sha256").read_text() == digest:
            return _runner_jar(app)
        work = home / f"build-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        try:
            started = time.monotonic()
            _maven_package(work, home / "build.log", timeout)
            (work / "target" / "pom.sha256").write_text(digest)
            if app.exists():  # a build from an older POM
                shutil.rmtree(app)
            os.rename(work / "target", app)  # whole or not at all: a half-built app is never seen
        finally:
            shutil.rmtree(work, ignore_errors=True)
        logger.info("built Apicurio Registry in %.0fs into %s", time.monotonic() - started, app)
        return _runner_jar(app)


def _maven_package(work: Path, log: Path, timeout: float) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RegistryError("building Apicurio Registry needs Maven (mvn on PATH) and Java 17")
    shutil.copyfile(POM, work / "pom.xml")
    # -DskipDefault turns off Apicurio's `external_repos` profile: its repositories
    # (packages.confluent.io, jitpack.io) may be unreachable, and the POM takes everything the
    # registry runs with from Maven Central.
    command = [mvn, "-B", "--no-transfer-progress", "-DskipDefault=true", "-DskipTests", "package"]
    with open(log, "wb") as out:
        try:
            done = subprocess.run(command, cwd=work, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RegistryError(f"Maven did not build Apicurio Registry within {timeout:.0f}s; "
                                f"log {log}:\n{_log_tail(log)}") from None
    if done.returncode != 0:
        raise RegistryError(f"Maven could not build Apicurio Registry (exit {done.returncode}); "
                            f"log {log}:\n{_log_tail(log)}")


def _runner_jar(app: Path) -> Path:
    """Quarkus writes the name of what it built (a -runner jar beside its lib/) here."""
    properties = app / "quarkus-artifact.properties"
    for line in properties.read_text().splitlines() if properties.is_file() else ():
        if line.startswith("path="):
            return app / line.removeprefix("path=").strip()
    raise RegistryError(f"{app} holds no Quarkus build (no path= in {properties}); delete it to rebuild")


class ApicurioRegistry:
    """An Apicurio Registry process on 127.0.0.1 that this object started and alone stops (by
    PID). ``url`` is the Confluent-compatible base URL, for SCHEMA_REGISTRY_URL."""

    host = "127.0.0.1"

    def __init__(self, log_path: Path | None = None, cache: Path | None = None,
                 start_timeout: float = START_TIMEOUT_S, build_timeout: float = BUILD_TIMEOUT_S) -> None:
        self.log_path = log_path
        self.cache = cache
        self.start_timeout = start_timeout
        self.build_timeout = build_timeout
        self.port = 0
        self.process: subprocess.Popen | None = None
        self.ready_after_s: float | None = None
        self._started_at = 0.0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{CCOMPAT_PATH}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> "ApicurioRegistry":
        jar = build_registry(self.cache, self.build_timeout)
        java = shutil.which("java")
        if java is None:
            raise RegistryError("running Apicurio Registry needs Java 17 (java on PATH)")
        for attempt in range(3):  # a free port can be taken between probe and bind
            self.port = free_port(self.host)
            self._spawn(java, jar)
            try:
                self._wait_ready()
                logger.info("Apicurio Registry (pid %s) ready at %s in %.1fs", self.pid, self.url, self.ready_after_s)
                return self
            except RegistryError:
                exited = self.process is not None and self.process.poll() is not None
                self.stop()
                if not exited or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _spawn(self, java: str, jar: Path) -> None:
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab") if self.log_path else None
        command = [java, *JVM_OPTIONS, f"-Dquarkus.http.host={self.host}", f"-Dquarkus.http.port={self.port}",
                   "-jar", str(jar)]
        self._started_at = time.monotonic()
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log or subprocess.DEVNULL,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        if log:
            log.close()

    def _wait_ready(self) -> None:
        """Ready means the Confluent API answers, not merely that the port accepts."""
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = self.process.returncode if self.process else None
                raise RegistryError(f"Apicurio Registry exited with code {code} before it was ready"
                                    + (f"; log:\n{_log_tail(self.log_path)}" if self.log_path else ""))
            try:
                with urllib.request.urlopen(self.url + "/subjects", timeout=2) as response:
                    if response.status == 200:
                        self.ready_after_s = time.monotonic() - self._started_at
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.2)
        raise RegistryError(f"Apicurio Registry did not answer {self.url}/subjects within {self.start_timeout:.0f}s")

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is not None:
            terminate([self.process], timeout)

    def __enter__(self) -> "ApicurioRegistry":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
