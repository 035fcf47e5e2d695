"""``python -m pipeline.stack start|stop|status|env``: the stack's command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pipeline.stack.services import Stack
from pipeline.stack.settings import (
    DEFAULT_PUBSUB_PORT,
    DEFAULT_REDIS_PORT,
    DEFAULT_SPANNER_GRPC_PORT,
    DEFAULT_SPANNER_REST_PORT,
    PORT_VARS,
    PrerequisiteError,
    StackConfig,
    StackError,
)


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
    for name in PORT_VARS:
        if getattr(config, name) != getattr(defaults, name):
            flags.append(f"--{name}={getattr(config, name)}")
    python = Path(sys.executable)
    try:
        shown = str(python.relative_to(Path.cwd()))  # e.g. .venv/bin/python
    except ValueError:
        shown = "python"
    return " ".join([shown, "-m pipeline.stack", *flags])
