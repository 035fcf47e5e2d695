"""The services of the local stack: the Pub/Sub emulator, the Spanner emulator and Redis, each a child process
with a pid file and a log file, started only when its port does not already answer its health check."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.stack.processes import (
    CHILDREN,
    alive,
    http_get,
    port_open,
    recorded_pid,
    stop_pid,
    tail,
)
from pipeline.stack.programs import cloud_sdk_root, java_executable, redis_server_executable
from pipeline.stack.settings import HOST, PrerequisiteError, StackConfig, StackError

_PUBSUB_LAUNCHER = Path("platform/pubsub-emulator/bin/cloud-pubsub-emulator")
_SPANNER_GATEWAY = Path("bin/cloud_spanner_emulator/gateway_main")


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
        return recorded_pid(self.pid_file, self.marker)

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
                f"{tail(self.log_file)}"
            )
        taken = [p for p in self.ports if port_open(p)]
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
        CHILDREN[process.pid] = process
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
            stop_pid(process.pid, self.marker)
            self.pid_file.unlink(missing_ok=True)
            why = (
                f"exited with code {code}"
                if code is not None
                else f"not healthy after {self.start_timeout:.0f} s"
            )
            raise StackError(f"{self.name} {why}. Last lines of {self.log_file}:\n{tail(self.log_file)}")
        took = time.monotonic() - started
        return f"{self.name}: started on port {self._ports_text()} (pid {process.pid}) in {took:.1f} s"

    def stop(self) -> str:
        pid = self.recorded_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return f"{self.name}: not started by this stack, nothing to stop"
        stop_pid(pid, self.marker)
        self.pid_file.unlink(missing_ok=True)
        # Its children (the Spanner emulator's emulator_main) may outlive the process for a moment: wait until
        # the ports are free, so that a start right after does not find them taken.
        deadline = time.monotonic() + 10.0
        while any(port_open(p) for p in self.ports) and time.monotonic() < deadline:
            time.sleep(0.05)
        return f"{self.name}: stopped (pid {pid})"

    def _wait_healthy(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.healthy():
                return True
            if not alive(pid):
                return False
            time.sleep(0.1)
        return self.healthy()

    def _ports_text(self) -> str:
        return "/".join(str(p) for p in self.ports)


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
        answer = http_get(f"http://{HOST}:{self.port}/")
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
        answer = http_get(f"http://{HOST}:{self.rest_port}/v1/projects/p/instanceConfigs")
        return (
            answer is not None
            and answer[0] == 200
            and "instanceConfigs" in answer[1]
            and port_open(self.grpc_port)
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
            pid = recorded_pid(pid_file, str(record.get("marker", "")))
            if pid is None:
                report(f"{name}: was no longer running (stale pid file removed)")
                continue
            stop_pid(pid, str(record.get("marker", "")))
            pid_file.unlink(missing_ok=True)
            report(f"{name}: stopped (pid {pid}, port {'/'.join(map(str, record.get('ports', [])))})")

    def status(self) -> list[ServiceStatus]:
        return [service.status() for service in self.services]

    def healthy(self) -> bool:
        return all(service.healthy() for service in self.services)

    def env(self) -> dict[str, str]:
        return self.config.env()
