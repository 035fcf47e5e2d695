"""Where the issue index reads and writes: the pipeline's Spanner and Pub/Sub flags, and their clients.

The HTTP service and the command line take the pipeline's own flags (``--spanner_project``,
``--spanner_instance``, ``--spanner_database``, ``--pubsub_project``, ``--status_change_topic``), with the
local stack's defaults, so one set of flags points every tool at the same deployment. The emulators are used
when ``SPANNER_EMULATOR_HOST`` / ``PUBSUB_EMULATOR_HOST`` are set. One Spanner database handle (and its session
pool) and one publisher serve the whole process.
"""

from __future__ import annotations

import argparse
import threading
from dataclasses import dataclass
from typing import Any

from api.bulk import StatusChangePublisher, topic_path
from transforms.storage import clients

DEFAULT_SPANNER_PROJECT = clients.LOCAL_SPANNER_PROJECT
DEFAULT_SPANNER_INSTANCE = clients.LOCAL_SPANNER_INSTANCE
DEFAULT_SPANNER_DATABASE = clients.LOCAL_SPANNER_DATABASE


@dataclass(frozen=True, slots=True)
class Backend:
    spanner_project: str = DEFAULT_SPANNER_PROJECT
    spanner_instance: str = DEFAULT_SPANNER_INSTANCE
    spanner_database: str = DEFAULT_SPANNER_DATABASE
    pubsub_project: str | None = None
    status_change_topic: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Backend:
        return cls(
            args.spanner_project,
            args.spanner_instance,
            args.spanner_database,
            args.pubsub_project,
            args.status_change_topic,
        )

    @property
    def topic_path(self) -> str | None:
        if not self.status_change_topic:
            return None
        return topic_path(self.pubsub_project or self.spanner_project, self.status_change_topic)


def add_spanner_arguments(group: argparse._ActionsContainer) -> None:
    """The pipeline's three Spanner flags (``pipeline.admin`` takes them too), with the local stack's defaults."""
    group.add_argument(
        "--spanner_project",
        "--spanner-project",
        dest="spanner_project",
        default=DEFAULT_SPANNER_PROJECT,
        help=f"Google Cloud project of the Spanner instance (default {DEFAULT_SPANNER_PROJECT})",
    )
    group.add_argument(
        "--spanner_instance",
        "--spanner-instance",
        dest="spanner_instance",
        default=DEFAULT_SPANNER_INSTANCE,
        help=f"Spanner instance id (default {DEFAULT_SPANNER_INSTANCE})",
    )
    group.add_argument(
        "--spanner_database",
        "--spanner-database",
        dest="spanner_database",
        default=DEFAULT_SPANNER_DATABASE,
        help=f"Spanner database id (default {DEFAULT_SPANNER_DATABASE})",
    )


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Spanner and Pub/Sub (the pipeline's flags)")
    add_spanner_arguments(group)
    group.add_argument(
        "--pubsub_project",
        "--pubsub-project",
        dest="pubsub_project",
        default=None,
        help="Google Cloud project of the status-change topic (default: --spanner_project)",
    )
    group.add_argument(
        "--status_change_topic",
        "--status-change-topic",
        dest="status_change_topic",
        default=None,
        help=(
            "The pipeline's input topic (a name, or projects/P/topics/T) where bulk update and delete publish "
            "status changes; without it they are refused"
        ),
    )


def database(backend: Backend) -> Any:
    """The process's Spanner ``Database`` handle for the backend (``transforms.storage.clients``)."""
    return clients.spanner_database(
        backend.spanner_project, backend.spanner_instance, backend.spanner_database
    )


_lock = threading.Lock()
_publishers: dict[str, StatusChangePublisher] = {}


def publisher(backend: Backend) -> StatusChangePublisher | None:
    """The process's status-change publisher, or None without ``--status_change_topic``."""
    path = backend.topic_path
    if path is None:
        return None
    with _lock:
        found = _publishers.get(path)
        if found is None:
            found = _publishers[path] = StatusChangePublisher(clients.pubsub_publisher(), path)
        return found
