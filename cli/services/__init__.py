"""Local development services (Neo4j, Redis) run as plain processes under ``<OVP_HOME>``, no Docker.

:mod:`cli.services.neo4j_server` and :mod:`cli.services.redis_server` start, stop and inspect one server each, both
on the skeleton of :class:`cli.services.local_server.LocalServer`. What they share lives here and there: the typed
status they return, and the process bookkeeping that makes ``stop`` touch only a process that ``start`` launched (a
pid file written by us, checked against the process's command line).
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import signal
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)

#: Exit code of ``ovp neo4j status`` / ``ovp redis status`` when the service is not usable (LSB "not running").
EXIT_DOWN = 3


@dataclass(frozen=True)
class ServerStatus:
    """What one local service is doing.

    Attributes:
        service: ``"neo4j"`` or ``"redis"``.
        up: the server answers on ``address`` with the configured credentials.
        address: where clients connect (``bolt://127.0.0.1:7687``, ``redis://127.0.0.1:6379``).
        pid: the server process (ours, or the port's owner when we did not start it); ``None`` when unknown.
        version: the version the server reports; ``None`` when it does not answer.
        ours: the process was started by ``ovp … start`` (its pid file points at it).
        started: this call started the process (``start`` only; ``False`` when it was already up).
        detail: a short human explanation when something is off (stale pid file, foreign process, refused login).
        elapsed_s: how long the call took.
    """

    service: str
    up: bool
    address: str
    pid: int | None = None
    version: str | None = None
    ours: bool = False
    started: bool = False
    detail: str = ""
    elapsed_s: float = 0.0

    def describe(self) -> str:
        """One line for the CLI: ``up at bolt://127.0.0.1:7687 (pid 42, Neo4j 5.26.30)`` or ``down``."""
        if self.up:
            facts = [f"pid {self.pid}" if self.pid else "pid unknown"]
            if self.version:
                facts.append(self.version)
            if not self.ours:
                facts.append("not started by ovp")
            return f"up at {self.address} ({', '.join(facts)})"
        return f"down ({self.detail})" if self.detail else "down"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class StopResult:
    """What ``stop`` did.

    Attributes:
        service: ``"neo4j"`` or ``"redis"``.
        stopped: a process of ours was running and has been ended.
        pid: that process; ``None`` when nothing of ours ran.
        detail: ``stopped``, ``killed …``, ``not running …`` (with a note on a foreign process holding the port).
        elapsed_s: how long the call took.
    """

    service: str
    stopped: bool
    pid: int | None
    detail: str
    elapsed_s: float = 0.0

    def describe(self) -> str:
        if self.stopped:
            return f"{self.detail} (pid {self.pid}) in {self.elapsed_s:.1f} s"
        return self.detail

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


# --- pid files --------------------------------------------------------------------------------------------------


def read_pid(pid_file: Path) -> int | None:
    """The pid stored in ``pid_file``, or ``None`` when the file is missing or does not hold a number."""
    try:
        return int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def write_pid(pid_file: Path, pid: int) -> None:
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = pid_file.with_suffix(".tmp")
    tmp.write_text(f"{pid}\n")
    tmp.replace(pid_file)


@contextlib.contextmanager
def exclusive(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file`` for the block, so two processes (two terminals, two test sessions, two
    clones setting up) never do the same set-up step at once. The second waits, then finds it done."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def command_line(pid: int) -> list[str]:
    """The argv of a live process (empty when it is gone or unreadable)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def is_alive(pid: int) -> bool:
    """Whether ``pid`` runs. Reaps it first if it is our exited child, and counts a zombie as dead."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass  # not our child (the usual case: the CLI that started it has exited)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        # /proc/<pid>/stat: "pid (comm) S ..." — the state follows the last ')'.
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def terminate(pid: int, *, timeout_s: float, name: str) -> bool:
    """SIGTERM ``pid``, wait up to ``timeout_s`` for it to exit, then SIGKILL it.

    Returns ``True`` when it exited on SIGTERM, ``False`` when it had to be killed.
    """
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    if wait_for_exit(pid, timeout_s):
        return True
    log.warning("%s (pid %d) did not stop within %.0f s of SIGTERM; sending SIGKILL", name, pid, timeout_s)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    wait_for_exit(pid, 10.0)
    return False


def wait_for_exit(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while is_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


# --- ports ------------------------------------------------------------------------------------------------------


def port_accepts(port: int, host: str = "127.0.0.1", timeout_s: float = 1.0) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError as exc:
        if exc.errno not in (errno.ECONNREFUSED, errno.ETIMEDOUT, errno.EHOSTUNREACH, None):
            log.debug("probing %s:%d: %s", host, port, exc)
        return False


def listening_pid(port: int) -> int | None:
    """The pid of the process listening on TCP ``port`` (any address), or ``None`` when unknown.

    Reads ``/proc/net/tcp{,6}`` for the socket inode and finds the process holding it; processes of other users
    cannot be inspected, so ``None`` does not prove the port is free.
    """
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # local_address is HEXIP:HEXPORT; state 0A is LISTEN.
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    if not inodes:
        return None
    targets = {f"socket:[{inode}]" for inode in inodes}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in targets:
                    return int(entry.name)
        except OSError:
            continue
    return None


def describe_process(pid: int | None) -> str:
    """``pid 42 (redis-server *:6379)`` for error messages; ``an unknown process`` when ``pid`` is ``None``."""
    if pid is None:
        return "an unknown process"
    argv = command_line(pid)
    shown = " ".join(argv)[:120] if argv else "?"
    return f"pid {pid} ({shown})"


# --- logs -------------------------------------------------------------------------------------------------------


def tail(path: Path, lines: int = 5) -> list[str]:
    """The last ``lines`` non-empty lines of a text file (empty when it does not exist)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64_000))
            text = handle.read().decode(errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-lines:]
