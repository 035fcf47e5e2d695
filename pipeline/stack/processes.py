"""The stack's processes: whether one runs, its command line, its pid file, and stopping it (never a process
whose command line does not carry the service's marker, so a recycled pid is never signalled)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from pipeline.stack.settings import HOST

# Popen objects of the processes this Python process started, so that stopping them also reaps them.
CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def alive(pid: int) -> bool:
    """True if ``pid`` is a running process (a zombie, exited but not yet reaped, counts as gone)."""
    child = CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [part.decode(errors="replace") for part in f.read().split(b"\0") if part]
    except OSError:
        return []


def port_open(port: int, host: str = HOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def http_get(url: str, timeout: float = 1.0) -> tuple[int, str] | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read(4096).decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, ""
    except (OSError, ValueError):
        return None


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def recorded_pid(pid_file: Path, marker: str) -> int | None:
    try:
        record = json.loads(pid_file.read_text())
        pid = int(record["pid"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        pid_file.unlink(missing_ok=True)
        return None
    if alive(pid) and marker in " ".join(cmdline(pid)):
        return pid
    pid_file.unlink(missing_ok=True)
    return None


def stop_pid(pid: int, marker: str, timeout: float = 15.0) -> None:
    """SIGTERM the process group led by ``pid`` (the service and its children), then SIGKILL if it lingers."""
    if not alive(pid) or marker not in " ".join(cmdline(pid)):
        _reap(pid)
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + (timeout if sig == signal.SIGTERM else 5.0)
        while time.monotonic() < deadline and alive(pid):
            time.sleep(0.05)
        if not alive(pid):
            break
    _reap(pid)


def _reap(pid: int) -> None:
    child = CHILDREN.pop(pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=5)
