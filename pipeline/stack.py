"""The local stack: the Pub/Sub and Spanner emulators and a Redis server, for development and tests.

Command line::

    python -m pipeline.stack start    # start what is not running yet, wait until healthy
    python -m pipeline.stack status   # one line per service; exit code 0 only if all are healthy
    python -m pipeline.stack env      # `export ...` lines: eval "$(python -m pipeline.stack env)"
    python -m pipeline.stack stop     # stop every process `start` started from this stack folder

Each service listens on its own port, set by a flag or an environment variable (defaults in brackets):
Pub/Sub ``--pubsub_port`` / ``STACK_PUBSUB_PORT`` (8085), Spanner gRPC ``--spanner_grpc_port`` /
``STACK_SPANNER_GRPC_PORT`` (9010) and REST ``--spanner_rest_port`` / ``STACK_SPANNER_REST_PORT`` (9020), Redis
``--redis_port`` / ``STACK_REDIS_PORT`` (6379). The stack folder (``--stack_dir`` / ``STACK_DIR``, default
``.stack`` in the checkout) holds ``logs/`` (one log per service, appended to; ``--log_dir`` / ``STACK_LOG_DIR``
moves it) and ``run/`` (one JSON pid file per process started).

Contract: ``start`` is idempotent. A service already answering its health check on its port is reused, whoever
started it; a port taken by something that does not answer like the service is an error (nothing is killed).
``stop`` stops only processes recorded in ``run/`` by ``start`` (checked against their command line, so a
recycled pid is never signalled), and removes stale pid files.

Python API (used by ``tests/conftest.py``, ``run_local.sh`` and the test command): :class:`StackConfig`,
:class:`Stack`, and the services :class:`PubSubEmulator`, :class:`SpannerEmulator` and :class:`RedisServer`,
each of which can be started on its own, e.g. a second Spanner emulator with ``--enable_fault_injection`` on
other ports for retry tests::

    extra = SpannerEmulator(19012, 19022, extra_flags=["--enable_fault_injection"], name="spanner-faults",
                            config=StackConfig.from_env())
    extra.start()
    ...
    extra.stop()

The stack needs the Google Cloud CLI with its Pub/Sub and Spanner emulator components, Java for the Pub/Sub
emulator, and Debian's ``redis-server`` (installed by ``start`` when missing and running as root).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PUBSUB_PORT = 8085
DEFAULT_SPANNER_GRPC_PORT = 9010
DEFAULT_SPANNER_REST_PORT = 9020
DEFAULT_REDIS_PORT = 6379
HOST = "localhost"

# Where Google's packages and installers put the Cloud CLI; tried only when `gcloud` is not on PATH.
_SDK_FALLBACKS = ("/usr/lib/google-cloud-sdk", "/usr/share/google-cloud-sdk", "/opt/google-cloud-sdk")

_PUBSUB_LAUNCHER = Path("platform/pubsub-emulator/bin/cloud-pubsub-emulator")
_SPANNER_GATEWAY = Path("bin/cloud_spanner_emulator/gateway_main")


class PrerequisiteError(RuntimeError):
    """A program the stack needs is missing; the message names it and says how to install it."""


class StackError(RuntimeError):
    """A service could not be started or stopped (port taken, crashed at start, not healthy in time)."""


def checkout_root() -> Path:
    """The source checkout holding this package, or the working directory when installed elsewhere."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "setup.py").exists() else Path.cwd()


@dataclass(frozen=True)
class StackConfig:
    """Ports and folders of one local stack. ``from_env`` reads the ``STACK_*`` environment variables."""

    pubsub_port: int = DEFAULT_PUBSUB_PORT
    spanner_grpc_port: int = DEFAULT_SPANNER_GRPC_PORT
    spanner_rest_port: int = DEFAULT_SPANNER_REST_PORT
    redis_port: int = DEFAULT_REDIS_PORT
    stack_dir: Path = field(default_factory=lambda: checkout_root() / ".stack")
    log_dir: Path | None = None
    spanner_flags: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> StackConfig:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name, var in _PORT_VARS.items():
            if env.get(var):
                values[name] = _port(env[var], var)
        if env.get("STACK_DIR"):
            values["stack_dir"] = Path(env["STACK_DIR"])
        if env.get("STACK_LOG_DIR"):
            values["log_dir"] = Path(env["STACK_LOG_DIR"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    @property
    def logs(self) -> Path:
        return self.log_dir if self.log_dir is not None else self.stack_dir / "logs"

    @property
    def run(self) -> Path:
        return self.stack_dir / "run"

    @property
    def pubsub_host(self) -> str:
        return f"{HOST}:{self.pubsub_port}"

    @property
    def spanner_host(self) -> str:
        return f"{HOST}:{self.spanner_grpc_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://{HOST}:{self.redis_port}/0"

    def env(self) -> dict[str, str]:
        """The environment variables that point the clients (ours and Google's) at this stack."""
        return {
            "PUBSUB_EMULATOR_HOST": self.pubsub_host,
            "SPANNER_EMULATOR_HOST": self.spanner_host,
            "REDIS_URL": self.redis_url,
            # See transforms/clients.py: multiplexed sessions lose concurrent transactions on the emulator.
            "GOOGLE_CLOUD_SPANNER_MULTIPLEXED_SESSIONS_FOR_RW": "false",
            "GOOGLE_CLOUD_SPANNER_MULTIPLEXED_SESSIONS": "false",
        }


_PORT_VARS = {
    "pubsub_port": "STACK_PUBSUB_PORT",
    "spanner_grpc_port": "STACK_SPANNER_GRPC_PORT",
    "spanner_rest_port": "STACK_SPANNER_REST_PORT",
    "redis_port": "STACK_REDIS_PORT",
}


def _port(text: str, what: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise StackError(f"{what}={text!r} is not a port number") from None
    if not 0 < port < 65536:
        raise StackError(f"{what}={port} is not a port number (1-65535)")
    return port


# ---------------------------------------------------------------------------------------------------------------
# Finding the programs


def cloud_sdk_root(environ: dict[str, str] | None = None, fallbacks: Sequence[str] = _SDK_FALLBACKS) -> Path:
    """The Google Cloud CLI's installation folder.

    ``CLOUDSDK_ROOT`` wins; otherwise the folder above ``bin/gcloud`` found on PATH (symlinks resolved, as
    Debian links ``/usr/bin/gcloud`` into ``/usr/lib/google-cloud-sdk``); otherwise the usual install folders.
    """
    env = os.environ if environ is None else environ
    if env.get("CLOUDSDK_ROOT"):
        root = Path(env["CLOUDSDK_ROOT"])
        if not (root / "bin").is_dir():
            raise PrerequisiteError(
                f"CLOUDSDK_ROOT={root} is not a Google Cloud CLI installation (it has no bin/ folder). "
                "Unset it to find the CLI from `gcloud` on PATH, or point it at the CLI's root folder."
            )
        return root
    candidates = [Path(p) for p in fallbacks]
    gcloud = shutil.which("gcloud", path=env.get("PATH", os.defpath))
    if gcloud:
        root = Path(gcloud).resolve().parent.parent
        # A wrapper script instead of a symlink leaves us in e.g. /usr: then try the usual folders.
        if _is_sdk_root(root) or not any(_is_sdk_root(c) for c in candidates):
            return root
    for candidate in candidates:
        if _is_sdk_root(candidate):
            return candidate
    raise PrerequisiteError(
        "The Google Cloud CLI was not found: no `gcloud` on PATH and CLOUDSDK_ROOT is not set. Install it from "
        "Google's Debian packages (https://cloud.google.com/sdk/docs/install#deb) with its emulators: "
        "apt-get install google-cloud-cli google-cloud-cli-pubsub-emulator google-cloud-cli-spanner-emulator; "
        "or set CLOUDSDK_ROOT to the CLI's root folder."
    )


def _is_sdk_root(path: Path) -> bool:
    return (path / "bin" / "gcloud").exists() and (path / "lib" / "gcloud.py").exists()


def java_executable(environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    if env.get("JAVA_HOME") and os.access(Path(env["JAVA_HOME"]) / "bin" / "java", os.X_OK):
        return str(Path(env["JAVA_HOME"]) / "bin" / "java")
    java = shutil.which("java", path=env.get("PATH", os.defpath))
    if java is None:
        raise PrerequisiteError(
            "Java was not found (no JAVA_HOME, no `java` on PATH): the Pub/Sub emulator runs on Java 11 or "
            "newer. Install it with: apt-get install default-jre-headless"
        )
    return java


def redis_server_executable(environ: dict[str, str] | None = None, *, install: bool = True) -> str:
    """``redis-server`` from PATH; when missing and running as root, installed with apt-get (once)."""
    env = os.environ if environ is None else environ
    path = env.get("PATH", os.defpath)
    found = shutil.which("redis-server", path=path)
    if found:
        return found
    if install and os.geteuid() == 0 and shutil.which("apt-get"):
        print("stack: redis-server is missing; installing Debian's redis-server with apt-get", flush=True)
        apt_env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (["apt-get", "update"], ["apt-get", "install", "-y", "redis-server"]):
            result = subprocess.run(command, env=apt_env, capture_output=True, text=True)
            if result.returncode != 0:
                raise PrerequisiteError(
                    f"Installing redis-server failed ({' '.join(command)} exited {result.returncode}):\n"
                    f"{result.stderr.strip()[-2000:]}"
                )
        found = shutil.which("redis-server", path=path) or shutil.which("redis-server")
        if found:
            return found
    raise PrerequisiteError(
        "redis-server was not found on PATH. Install Debian's package: sudo apt-get install redis-server "
        "(`python -m pipeline.stack start` installs it itself when run as root)."
    )


# ---------------------------------------------------------------------------------------------------------------
# Processes


# Popen objects of the processes this Python process started, so that stopping them also reaps them.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _alive(pid: int) -> bool:
    """True if ``pid`` is a running process (a zombie, exited but not yet reaped, counts as gone)."""
    child = _CHILDREN.get(pid)
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


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [part.decode(errors="replace") for part in f.read().split(b"\0") if part]
    except OSError:
        return []


def _port_open(port: int, host: str = HOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _http_get(url: str, timeout: float = 1.0) -> tuple[int, str] | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read(4096).decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, ""
    except (OSError, ValueError):
        return None


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class ServiceStatus:
    """What ``status`` found for one service."""

    name: str
    ports: tuple[int, ...]
    healthy: bool
    pid: int | None  # the recorded pid, when this stack started it and it still runs
    log: Path

    def line(self) -> str:
        state = "healthy" if self.healthy else ("NOT ANSWERING" if self.pid else "not running")
        where = ", ".join(str(p) for p in self.ports)
        owner = (
            f" (pid {self.pid})" if self.pid else (" (started outside this stack)" if self.healthy else "")
        )
        return f"{self.name:<16} port {where:<12} {state}{owner}  log {self.log}"


class Service:
    """One local server started as a child process in its own session, with a pid file and a log file.

    Subclasses give the command, the ports and the health check; ``start`` and ``stop`` are shared.
    """

    kind = "service"
    # A substring of the command line of the processes this service starts (guards against pid reuse).
    marker = ""
    start_timeout = 90.0

    def __init__(self, name: str, config: StackConfig) -> None:
        self.name = name
        self.config = config

    # What subclasses provide.
    @property
    def ports(self) -> tuple[int, ...]:
        raise NotImplementedError

    def command(self) -> list[str]:
        raise NotImplementedError

    def healthy(self) -> bool:
        raise NotImplementedError

    # Shared behaviour.
    @property
    def pid_file(self) -> Path:
        return self.config.run / f"{self.name}-{self.ports[0]}.json"

    @property
    def log_file(self) -> Path:
        return self.config.logs / f"{self.name}.log"

    def recorded_pid(self) -> int | None:
        """The pid in this service's pid file if that process still runs (a stale file is removed)."""
        return _recorded_pid(self.pid_file, self.marker)

    def status(self) -> ServiceStatus:
        return ServiceStatus(self.name, self.ports, self.healthy(), self.recorded_pid(), self.log_file)

    def start(self) -> str:
        """Start the service unless it already answers on its port; wait until healthy. Returns what it did."""
        pid = self.recorded_pid()
        if self.healthy():
            owner = f"pid {pid}" if pid else "started outside this stack; `stop` leaves it alone"
            return f"{self.name}: already running on port {self._ports_text()} ({owner}), reusing it"
        if pid is not None:
            # Ours, alive but not answering: maybe still starting (another `start` racing us).
            if self._wait_healthy(pid, timeout=self.start_timeout):
                return f"{self.name}: already running on port {self._ports_text()} (pid {pid}), reusing it"
            raise StackError(
                f"{self.name}: process {pid} (started by this stack) runs but does not answer on port "
                f"{self._ports_text()}; stop it with `python -m pipeline.stack stop`. Log {self.log_file}:\n"
                f"{_tail(self.log_file)}"
            )
        taken = [p for p in self.ports if _port_open(p)]
        if taken:
            raise StackError(
                f"{self.name}: port {', '.join(map(str, taken))} is in use by a program that is not a healthy "
                f"{self.kind}. Stop that program or choose other ports (see `python -m pipeline.stack --help`)."
            )
        command = self.command()
        self.config.logs.mkdir(parents=True, exist_ok=True)
        self.config.run.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with open(self.log_file, "ab") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(command)}\n".encode())
            log.flush()
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() signals the whole group
                cwd=self.config.stack_dir,
            )
        _CHILDREN[process.pid] = process
        self.pid_file.write_text(
            json.dumps(
                {
                    "name": self.name,
                    "pid": process.pid,
                    "ports": list(self.ports),
                    "marker": self.marker,
                    "command": command,
                    "log": str(self.log_file),
                    "started_at": time.time(),
                }
            )
        )
        if not self._wait_healthy(process.pid, timeout=self.start_timeout):
            code = process.poll()
            _stop_pid(process.pid, self.marker)
            self.pid_file.unlink(missing_ok=True)
            why = (
                f"exited with code {code}"
                if code is not None
                else f"not healthy after {self.start_timeout:.0f} s"
            )
            raise StackError(f"{self.name} {why}. Last lines of {self.log_file}:\n{_tail(self.log_file)}")
        took = time.monotonic() - started
        return f"{self.name}: started on port {self._ports_text()} (pid {process.pid}) in {took:.1f} s"

    def stop(self) -> str:
        pid = self.recorded_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return f"{self.name}: not started by this stack, nothing to stop"
        _stop_pid(pid, self.marker)
        self.pid_file.unlink(missing_ok=True)
        return f"{self.name}: stopped (pid {pid})"

    def _wait_healthy(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.healthy():
                return True
            if not _alive(pid):
                return False
            time.sleep(0.1)
        return self.healthy()

    def _ports_text(self) -> str:
        return "/".join(str(p) for p in self.ports)


def _recorded_pid(pid_file: Path, marker: str) -> int | None:
    try:
        record = json.loads(pid_file.read_text())
        pid = int(record["pid"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        pid_file.unlink(missing_ok=True)
        return None
    if _alive(pid) and marker in " ".join(_cmdline(pid)):
        return pid
    pid_file.unlink(missing_ok=True)
    return None


def _stop_pid(pid: int, marker: str, timeout: float = 15.0) -> None:
    """SIGTERM the process group led by ``pid`` (the service and its children), then SIGKILL if it lingers."""
    if not _alive(pid) or marker not in " ".join(_cmdline(pid)):
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
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
        if not _alive(pid):
            break
    _reap(pid)


def _reap(pid: int) -> None:
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=5)


class _OnePortService(Service):
    default_name = ""

    def __init__(self, port: int, config: StackConfig, name: str | None = None) -> None:
        super().__init__(name or self.default_name, config)
        self.port = port

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.port,)


class PubSubEmulator(_OnePortService):
    """The Cloud CLI's Pub/Sub emulator (Java). Healthy when ``GET /`` on its port answers ``Ok``."""

    kind = "Pub/Sub emulator"
    marker = "pubsub-emulator"
    default_name = "pubsub"

    def command(self) -> list[str]:
        launcher = cloud_sdk_root() / _PUBSUB_LAUNCHER
        if not launcher.exists():
            raise PrerequisiteError(
                f"The Pub/Sub emulator is not installed in the Google Cloud CLI at {cloud_sdk_root()} (no "
                f"{_PUBSUB_LAUNCHER}). Install it with: apt-get install google-cloud-cli-pubsub-emulator "
                "(or `gcloud components install pubsub-emulator` for a CLI not installed from Debian packages)."
            )
        java_executable()
        return [str(launcher), f"--host={HOST}", f"--port={self.port}"]

    def healthy(self) -> bool:
        answer = _http_get(f"http://{HOST}:{self.port}/")
        return answer is not None and answer[0] == 200 and answer[1].strip() == "Ok"


class SpannerEmulator(Service):
    """The Cloud CLI's Spanner emulator (``gateway_main``, which runs ``emulator_main``).

    Healthy when its REST port lists instance configs. ``extra_flags`` go to ``gateway_main``, e.g.
    ``--enable_fault_injection`` (commits are aborted at random, for testing retries).
    """

    kind = "Spanner emulator"
    marker = "cloud_spanner_emulator"

    def __init__(
        self,
        grpc_port: int,
        rest_port: int,
        config: StackConfig,
        *,
        extra_flags: Sequence[str] = (),
        name: str = "spanner",
    ) -> None:
        super().__init__(name, config)
        self.grpc_port = grpc_port
        self.rest_port = rest_port
        self.extra_flags = tuple(extra_flags)

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.grpc_port, self.rest_port)

    @property
    def host(self) -> str:
        """The value for ``SPANNER_EMULATOR_HOST``."""
        return f"{HOST}:{self.grpc_port}"

    def command(self) -> list[str]:
        gateway = cloud_sdk_root() / _SPANNER_GATEWAY
        if not gateway.exists():
            raise PrerequisiteError(
                f"The Spanner emulator is not installed in the Google Cloud CLI at {cloud_sdk_root()} (no "
                f"{_SPANNER_GATEWAY}). Install it with: apt-get install google-cloud-cli-spanner-emulator "
                "(or `gcloud components install cloud-spanner-emulator` for a CLI not installed from Debian "
                "packages)."
            )
        return [
            str(gateway),
            f"--hostname={HOST}",
            f"--grpc_port={self.grpc_port}",
            f"--http_port={self.rest_port}",
            *self.extra_flags,
        ]

    def healthy(self) -> bool:
        answer = _http_get(f"http://{HOST}:{self.rest_port}/v1/projects/p/instanceConfigs")
        return (
            answer is not None
            and answer[0] == 200
            and "instanceConfigs" in answer[1]
            and _port_open(self.grpc_port)
        )


class RedisServer(_OnePortService):
    """Debian's ``redis-server``, in memory only (no RDB snapshots, no append-only file)."""

    kind = "Redis server"
    marker = "redis-server"
    default_name = "redis"
    start_timeout = 30.0

    def command(self) -> list[str]:
        return [
            redis_server_executable(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "-::1",  # IPv6 loopback when the machine has it ('-': optional)
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--logfile",
            "",
        ]

    def healthy(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=0.5) as conn:
                conn.settimeout(1.0)
                conn.sendall(b"PING\r\n")
                return conn.recv(64).startswith(b"+PONG")
        except OSError:
            return False


class Stack:
    """The three services of one :class:`StackConfig`."""

    def __init__(self, config: StackConfig | None = None) -> None:
        self.config = config or StackConfig.from_env()
        c = self.config
        self.pubsub = PubSubEmulator(c.pubsub_port, c)
        self.spanner = SpannerEmulator(
            c.spanner_grpc_port, c.spanner_rest_port, c, extra_flags=c.spanner_flags
        )
        self.redis = RedisServer(c.redis_port, c)

    @property
    def services(self) -> tuple[Service, ...]:
        return (self.pubsub, self.spanner, self.redis)

    def start(self, report=print) -> None:
        """Start (or reuse) every service. Prerequisites are checked for all before anything starts."""
        missing: list[str] = []
        for service in self.services:
            if service.healthy():
                continue
            try:
                service.command()
            except PrerequisiteError as e:
                missing.append(str(e))
        if missing:
            raise PrerequisiteError("\n".join(missing))
        for service in self.services:
            report(service.start())

    def stop(self, report=print) -> None:
        """Stop every process started from this stack folder (whatever ports it was started on)."""
        for pid_file in sorted(self.config.run.glob("*.json")) if self.config.run.is_dir() else []:
            try:
                record = json.loads(pid_file.read_text())
            except (OSError, ValueError):
                pid_file.unlink(missing_ok=True)
                continue
            name = record.get("name", pid_file.stem)
            pid = _recorded_pid(pid_file, str(record.get("marker", "")))
            if pid is None:
                report(f"{name}: was no longer running (stale pid file removed)")
                continue
            _stop_pid(pid, str(record.get("marker", "")))
            pid_file.unlink(missing_ok=True)
            report(f"{name}: stopped (pid {pid}, port {'/'.join(map(str, record.get('ports', [])))})")

    def status(self) -> list[ServiceStatus]:
        return [service.status() for service in self.services]

    def healthy(self) -> bool:
        return all(service.healthy() for service in self.services)

    def env(self) -> dict[str, str]:
        return self.config.env()


# ---------------------------------------------------------------------------------------------------------------
# Command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.stack",
        description="Start, check and stop the local Pub/Sub emulator, Spanner emulator and Redis server.",
    )
    parser.add_argument("command", choices=["start", "stop", "status", "env"])

    def option(name: str, var: str, help_text: str, **kw: object) -> None:
        parser.add_argument(
            f"--{name}", f"--{name.replace('_', '-')}", dest=name, help=f"{help_text} [{var}]", **kw
        )

    option(
        "pubsub_port", "STACK_PUBSUB_PORT", f"Pub/Sub emulator port (default {DEFAULT_PUBSUB_PORT})", type=int
    )
    option(
        "spanner_grpc_port",
        "STACK_SPANNER_GRPC_PORT",
        f"Spanner emulator gRPC port (default {DEFAULT_SPANNER_GRPC_PORT})",
        type=int,
    )
    option(
        "spanner_rest_port",
        "STACK_SPANNER_REST_PORT",
        f"Spanner emulator REST port (default {DEFAULT_SPANNER_REST_PORT})",
        type=int,
    )
    option("redis_port", "STACK_REDIS_PORT", f"Redis port (default {DEFAULT_REDIS_PORT})", type=int)
    option("stack_dir", "STACK_DIR", "folder for logs/ and run/ (default .stack in the checkout)", type=Path)
    option("log_dir", "STACK_LOG_DIR", "folder for the three logs (default <stack_dir>/logs)", type=Path)
    parser.add_argument(
        "--spanner_fault_injection",
        "--spanner-fault-injection",
        action="store_true",
        help="start the Spanner emulator with --enable_fault_injection (it aborts commits at random)",
    )
    parser.add_argument(
        "--quiet", "-q", action="store_true", help="status: print nothing, only set the exit code"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = StackConfig.from_env(
            pubsub_port=args.pubsub_port,
            spanner_grpc_port=args.spanner_grpc_port,
            spanner_rest_port=args.spanner_rest_port,
            redis_port=args.redis_port,
            stack_dir=args.stack_dir,
            log_dir=args.log_dir,
            spanner_flags=("--enable_fault_injection",) if args.spanner_fault_injection else None,
        )
        stack = Stack(config)
        if args.command == "start":
            stack.start()
            print(f'stack: healthy. Point clients at it with: eval "$({_self_command(config)} env)"')
        elif args.command == "stop":
            stack.stop()
        elif args.command == "status":
            statuses = stack.status()
            if not args.quiet:
                for status in statuses:
                    print(status.line())
            return 0 if all(s.healthy for s in statuses) else 1
        else:
            for name, value in stack.env().items():
                print(f"export {name}={value}")
    except (PrerequisiteError, StackError) as e:
        print(f"stack: {e}", file=sys.stderr)
        return 2
    return 0


def _self_command(config: StackConfig) -> str:
    flags = []
    defaults = StackConfig()
    for name in _PORT_VARS:
        if getattr(config, name) != getattr(defaults, name):
            flags.append(f"--{name}={getattr(config, name)}")
    python = Path(sys.executable)
    try:
        shown = str(python.relative_to(Path.cwd()))  # e.g. .venv/bin/python
    except ValueError:
        shown = "python"
    return " ".join([shown, "-m pipeline.stack", *flags])


if __name__ == "__main__":
    sys.exit(main())
