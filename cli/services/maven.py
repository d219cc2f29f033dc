"""Resolving artifacts from Maven Central with Maven's dependency plugin: the one way the set-up fetches what PyPI does
not ship (the Neo4j server's jars, the bge-small-zh ONNX model). Maven caches downloads in ``~/.m2``, so a second clone
resolves without touching the network.
"""
from __future__ import annotations

import logging
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

from ovp.errors import ServiceError

log = logging.getLogger(__name__)

#: Pinned so that resolution does not depend on the Maven installation's default plugin version.
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"
MAVEN_TIMEOUT_S = 1800.0
PROGRESS_EVERY_S = 5.0


def copy_dependencies(pom: Path, out_dir: Path, *, what: str, hint: str, transitive: bool = True) -> None:
    """Resolve the dependencies ``pom`` declares and copy their jars into ``out_dir``.

    Args:
        what: what is being resolved, for messages ("Neo4j", "bge-small-zh-v1.5").
        hint: what to check when resolution fails.
        transitive: also copy the dependencies' own runtime dependencies.

    Raises:
        ServiceError: Maven is missing, took longer than ``MAVEN_TIMEOUT_S``, or failed (with Maven's first error).
    """
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ServiceError(f"Maven (`mvn`) is not on PATH; it resolves {what}", hint="apt-get install -y maven")
    command = [
        mvn, "-B", "-f", str(pom), f"{DEPENDENCY_PLUGIN}:copy-dependencies",
        f"-DoutputDirectory={out_dir}", "-DincludeScope=runtime",
    ]
    if not transitive:
        command.append("-DexcludeTransitive=true")
    _run_maven(command, pom.parent, what, hint)


def _run_maven(command: list[str], cwd: Path, what: str, hint: str) -> None:
    """Run Maven, turning its per-artifact lines into a progress log line every few seconds."""
    log.debug("running %s", " ".join(command))
    downloads, downloaded_kb, errors = 0, 0.0, []
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               stdin=subprocess.DEVNULL)
    assert process.stdout is not None
    # A watchdog, because a stalled download prints nothing and would block the loop below forever.
    timed_out = threading.Event()
    watchdog = threading.Timer(MAVEN_TIMEOUT_S, lambda: (timed_out.set(), process.kill()))
    watchdog.start()
    next_report = time.monotonic() + PROGRESS_EVERY_S
    try:
        for line in process.stdout:
            line = line.rstrip().removeprefix("[INFO] ")
            if line.startswith("Downloaded from"):
                downloads += 1
                downloaded_kb += _kilobytes(line)
                log.debug("%s", line)
                if time.monotonic() >= next_report:
                    log.info("maven: %d files downloaded (%.0f MB)", downloads, downloaded_kb / 1000)
                    next_report = time.monotonic() + PROGRESS_EVERY_S
            elif line.startswith("[ERROR]"):
                errors.append(line.removeprefix("[ERROR]").strip())
        code = process.wait()
    finally:
        watchdog.cancel()
        if process.poll() is None:  # interrupted (Ctrl-C): do not leave Maven running
            process.kill()
    if timed_out.is_set():
        raise ServiceError(f"Maven took longer than {MAVEN_TIMEOUT_S:.0f} s resolving {what}",
                           hint="check network access to Maven Central (repo.maven.apache.org)")
    if downloads:
        log.info("maven: %d files downloaded (%.0f MB) into ~/.m2", downloads, downloaded_kb / 1000)
    if code != 0:
        # Maven's first error line names the failure; the rest is its generic advice.
        detail = next((e for e in errors if e), f"exit code {code}")[:600]
        raise ServiceError(f"Maven could not resolve {what}: {detail}", hint=hint)


def _kilobytes(line: str) -> float:
    # "Downloaded from central: https://… (1.2 MB at 3.4 MB/s)"
    match = re.search(r"\(([\d.]+) (B|kB|KB|MB|GB) at", line)
    if not match:
        return 0.0
    factor = {"B": 0.001, "kB": 1.0, "KB": 1.0, "MB": 1000.0, "GB": 1e6}[match.group(2)]
    return float(match.group(1)) * factor
