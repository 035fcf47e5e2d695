"""The local stack's configuration: ports and folders (``StackConfig``), and the errors the stack raises."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PUBSUB_PORT = 8085
DEFAULT_SPANNER_GRPC_PORT = 9010
DEFAULT_SPANNER_REST_PORT = 9020
DEFAULT_REDIS_PORT = 6379
HOST = "localhost"


class PrerequisiteError(RuntimeError):
    """A program the stack needs is missing; the message names it and says how to install it."""


class StackError(RuntimeError):
    """A service could not be started or stopped (port taken, crashed at start, not healthy in time)."""


def checkout_root() -> Path:
    """The source checkout holding this package, or the working directory when installed elsewhere."""
    root = Path(__file__).resolve().parents[2]
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
        for name, var in PORT_VARS.items():
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
            # See transforms/storage/clients.py: multiplexed sessions lose concurrent transactions on the emulator.
            "GOOGLE_CLOUD_SPANNER_MULTIPLEXED_SESSIONS_FOR_RW": "false",
            "GOOGLE_CLOUD_SPANNER_MULTIPLEXED_SESSIONS": "false",
        }


PORT_VARS = {
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
