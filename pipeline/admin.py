"""Administration of the Spanner database: schema, projects, API tokens.

Command line (every subcommand takes ``--spanner_project``, ``--spanner_instance`` and ``--spanner_database``,
defaulting to the local stack's ``local-project`` / ``local-instance`` / ``occurrences``)::

    python -m pipeline.admin create-database
    python -m pipeline.admin add-project --project-id 1 --organization-id 1 --slug backend \\
        [--organization-slug acme] [--feature organizations:profile-file-io-main-thread-ingest ...]
    python -m pipeline.admin create-token --organization acme --scope write --name ci
    python -m pipeline.admin list-projects
    python -m pipeline.admin fill-vocabularies   # once, for a database created before its OrgWords table
    python -m pipeline.admin drop-database --yes
    python -m pipeline.admin create-topics [--pubsub_project local-project]   # Pub/Sub topics for the pipeline

On the emulator (``SPANNER_EMULATOR_HOST`` set, see ``python -m pipeline.stack env``) ``create-database`` also
creates the instance when missing; on Google Cloud the instance must exist. ``create-database`` is idempotent:
it applies only the statements of ``schemas/spanner.sql`` whose table, index or column is missing.

The functions behind the commands (:func:`create_database`, :func:`drop_database`) are the Python API that
tests and scripts use.
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from api.backend import (
    DEFAULT_SPANNER_DATABASE,
    DEFAULT_SPANNER_INSTANCE,
    DEFAULT_SPANNER_PROJECT,
    add_spanner_arguments,
)
from transforms.storage import clients, org_words, registry, schema

if TYPE_CHECKING:
    from google.cloud.spanner_v1.database import Database
    from google.cloud.spanner_v1.instance import Instance

DEFAULT_PROJECT = DEFAULT_SPANNER_PROJECT
DEFAULT_INSTANCE = DEFAULT_SPANNER_INSTANCE
DEFAULT_DATABASE = DEFAULT_SPANNER_DATABASE
EMULATOR_INSTANCE_CONFIG = "emulator-config"


class AdminError(RuntimeError):
    """A failure with a message the user can act on."""


def ensure_instance(project: str, instance_id: str) -> Instance:
    """The instance; created (emulator config, one node) when missing and on the emulator."""
    _check_emulator_reachable()
    client = clients.spanner_client(project)
    instance = client.instance(
        instance_id,
        configuration_name=f"projects/{project}/instanceConfigs/{EMULATOR_INSTANCE_CONFIG}",
        display_name=instance_id,
        node_count=1,
    )
    if instance.exists():
        return instance
    if not clients.spanner_emulator_host():
        raise AdminError(
            f"Spanner instance {instance_id} does not exist in project {project}. Create it first (it is not "
            f"created automatically on Google Cloud): gcloud spanner instances create {instance_id} "
            f"--project={project} --config=CONFIG --description={instance_id} --processing-units=100"
        )
    try:
        instance.create().result(schema.DDL_TIMEOUT_S)
    except Exception as e:  # another process may have created it meanwhile
        from google.api_core.exceptions import AlreadyExists

        if not isinstance(e, AlreadyExists):
            raise
    return instance


def database_handle(project: str, instance: str, database: str) -> Database:
    _check_emulator_reachable()
    return clients.spanner_database(project, instance, database)


def create_database(
    project: str = DEFAULT_PROJECT,
    instance: str = DEFAULT_INSTANCE,
    database: str = DEFAULT_DATABASE,
    statements: list[str] | None = None,
) -> schema.SchemaResult:
    """Create the instance (emulator only) and the database if missing, and apply the schema's missing statements.
    A database created with the words' vocabulary table has every vocabulary complete (nothing is stored yet);
    one that gets the table later needs ``fill-vocabularies`` (``transforms.storage.org_words``)."""
    ensure_instance(project, instance)
    handle = clients.spanner_database(project, instance, database)
    result = schema.apply_schema(handle, statements)
    if result.created and org_words.TABLE in result.applied:
        org_words.mark_complete(handle)
    return result


def drop_database(
    project: str = DEFAULT_PROJECT, instance: str = DEFAULT_INSTANCE, database: str = DEFAULT_DATABASE
) -> bool:
    """Drop the database; False if it did not exist."""
    handle = database_handle(project, instance, database)
    if not handle.exists():
        return False
    handle.drop()
    return True


DEFAULT_INPUT_TOPIC = "occurrences"
DEFAULT_INPUT_SUBSCRIPTION = "occurrences-pipeline"
DEFAULT_DEAD_LETTER_TOPIC = "occurrences-dead-letters"


def create_topics(
    project: str = DEFAULT_PROJECT,
    input_topic: str = DEFAULT_INPUT_TOPIC,
    input_subscription: str = DEFAULT_INPUT_SUBSCRIPTION,
    dead_letter_topic: str = DEFAULT_DEAD_LETTER_TOPIC,
) -> list[tuple[str, bool]]:
    """Create the pipeline's input topic and subscription and its dead-letter topic, each unless it exists.

    The dead-letter topic gets a subscription of the same name, so dead letters are kept until read (Pub/Sub
    drops messages published to a topic without subscriptions). Returns (resource path, created) pairs.
    """
    from google.api_core.exceptions import AlreadyExists

    publisher, subscriber = clients.pubsub_publisher(), clients.pubsub_subscriber()
    wanted = [
        (publisher.topic_path(project, input_topic), None),
        (subscriber.subscription_path(project, input_subscription), input_topic),
        (publisher.topic_path(project, dead_letter_topic), None),
        (subscriber.subscription_path(project, dead_letter_topic), dead_letter_topic),
    ]
    done: list[tuple[str, bool]] = []
    for path, topic in wanted:
        try:
            if topic is None:
                publisher.create_topic(name=path)
            else:
                subscriber.create_subscription(
                    name=path, topic=publisher.topic_path(project, topic), ack_deadline_seconds=60
                )
            done.append((path, True))
        except AlreadyExists:
            done.append((path, False))
    return done


def _check_emulator_reachable() -> None:
    """Fail fast (instead of retrying for minutes) when the emulator named by SPANNER_EMULATOR_HOST is down."""
    _check_reachable("Spanner", clients.SPANNER_EMULATOR_VAR, clients.spanner_emulator_host())


def _check_reachable(what: str, variable: str, host: str | None) -> None:
    if not host:
        return
    name, _, port = host.rpartition(":")
    try:
        with socket.create_connection((name or "localhost", int(port)), timeout=2):
            return
    except (OSError, ValueError):
        raise AdminError(
            f"Cannot reach the {what} emulator at {variable}={host}. Start the local stack with "
            '`python -m pipeline.stack start` (then `eval "$(python -m pipeline.stack env)"`), or unset '
            f"{variable} to use Google Cloud."
        ) from None


# ---------------------------------------------------------------------------------------------------------------
# Command line


def _add_spanner_flags(parser: argparse.ArgumentParser) -> None:
    add_spanner_arguments(parser.add_argument_group("Spanner database"))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline.admin", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser(
        "create-database", help="create the database (and, on the emulator, the instance); apply missing DDL"
    )
    p.add_argument(
        "--schema",
        type=Path,
        default=None,
        help="DDL file to apply (default: the packaged schemas/spanner.sql)",
    )
    _add_spanner_flags(p)

    p = commands.add_parser(
        "fill-vocabularies",
        help="write the words' vocabulary of @text rows stored before the OrgWords table, and mark it complete "
        "(run once after create-database added the table, once the pipeline that writes it runs)",
    )
    _add_spanner_flags(p)

    p = commands.add_parser("drop-database", help="drop the database and all its data")
    p.add_argument("--yes", action="store_true", help="confirm: the data cannot be recovered")
    _add_spanner_flags(p)

    p = commands.add_parser("add-project", help="register a project (and its organization), or update it")
    p.add_argument("--project-id", "--project_id", dest="project_id", type=int, required=True)
    p.add_argument("--organization-id", "--organization_id", dest="organization_id", type=int, required=True)
    p.add_argument("--slug", required=True, help="the project's slug, unique within its organization")
    p.add_argument(
        "--organization-slug",
        "--organization_slug",
        dest="organization_slug",
        help="the organization's slug (default: kept if registered, else org-<id>)",
    )
    p.add_argument(
        "--feature",
        action="append",
        dest="features",
        metavar="FEATURE",
        help="a feature flag, e.g. organizations:profile-file-io-main-thread-ingest (repeat for several; "
        "features belong to the whole organization). Given: replaces the project's features; omitted: keeps them",
    )
    p.add_argument("--clear-features", action="store_true", help="remove all of the project's features")
    _add_spanner_flags(p)

    p = commands.add_parser("create-token", help="issue an issue-index API token for an organization")
    p.add_argument("--organization", required=True, help="organization id or slug")
    p.add_argument("--scope", choices=registry.SCOPES, default="read", help="read, or write (implies read)")
    p.add_argument("--name", help="a label to recognise the token by")
    _add_spanner_flags(p)

    p = commands.add_parser(
        "list-projects", help="list registered projects with their organization's features"
    )
    _add_spanner_flags(p)

    p = commands.add_parser(
        "create-topics", help="create the Pub/Sub input topic and subscription and the dead-letter topic"
    )
    p.add_argument(
        "--pubsub_project",
        "--pubsub-project",
        dest="pubsub_project",
        default=DEFAULT_PROJECT,
        help=f"Google Cloud project of the topics (default {DEFAULT_PROJECT})",
    )
    p.add_argument("--input_topic", "--input-topic", dest="input_topic", default=DEFAULT_INPUT_TOPIC)
    p.add_argument(
        "--input_subscription",
        "--input-subscription",
        dest="input_subscription",
        default=DEFAULT_INPUT_SUBSCRIPTION,
    )
    p.add_argument(
        "--dead_letter_topic",
        "--dead-letter-topic",
        dest="dead_letter_topic",
        default=DEFAULT_DEAD_LETTER_TOPIC,
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    where = (
        getattr(args, "spanner_project", DEFAULT_PROJECT),
        getattr(args, "spanner_instance", DEFAULT_INSTANCE),
        getattr(args, "spanner_database", DEFAULT_DATABASE),
    )
    try:
        return _run(args, where)
    except (AdminError, registry.RegistryError, schema.SchemaError, clients.MissingCredentialsError) as e:
        print(f"admin: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        from google.api_core.exceptions import GoogleAPICallError, NotFound

        if isinstance(e, NotFound):
            print(
                f"admin: {e.message}. Does the database exist? Create it with: python -m pipeline.admin "
                f"create-database --spanner_project {where[0]} --spanner_instance {where[1]} "
                f"--spanner_database {where[2]}",
                file=sys.stderr,
            )
            return 2
        if isinstance(e, GoogleAPICallError):
            print(f"admin: Spanner refused the request: {e}", file=sys.stderr)
            return 2
        raise


def _run(args: argparse.Namespace, where: tuple[str, str, str]) -> int:
    if args.command == "create-topics":
        _check_reachable("Pub/Sub", clients.PUBSUB_EMULATOR_VAR, clients.pubsub_emulator_host())
        for path, created in create_topics(
            args.pubsub_project, args.input_topic, args.input_subscription, args.dead_letter_topic
        ):
            print(f"{path}: {'created' if created else 'exists'}")
        return 0
    if args.command == "create-database":
        statements = schema.load_statements(args.schema) if args.schema else None
        print(create_database(*where, statements=statements).summary())
        return 0
    if args.command == "fill-vocabularies":
        words, full = org_words.fill(database_handle(*where))
        print(f"vocabularies complete: {words} words written, {full} groups with full words marked")
        return 0
    if args.command == "drop-database":
        if not args.yes:
            raise AdminError(
                f"drop-database deletes database {where[2]} and all its data: add --yes to confirm"
            )
        dropped = drop_database(*where)
        print(f"database {where[2]} dropped" if dropped else f"database {where[2]} does not exist")
        return 0

    database = database_handle(*where)
    if not database.exists():
        raise AdminError(
            f"Database {where[2]} does not exist in instance {where[1]} of project {where[0]}. Create it with: "
            f"python -m pipeline.admin create-database --spanner_database {where[2]}"
        )
    if args.command == "add-project":
        if args.clear_features and args.features:
            raise AdminError("--clear-features and --feature contradict each other: give one of them")
        result = registry.register_project(
            database,
            project_id=args.project_id,
            organization_id=args.organization_id,
            slug=args.slug,
            organization_slug=args.organization_slug,
            features=() if args.clear_features else args.features,
        )
        info = result.project
        print(
            f"project {info.project_id} ({info.slug}) {'registered' if result.project_created else 'updated'} in "
            f"organization {info.organization_id} ({info.organization_slug}"
            f"{', new' if result.organization_created else ''}); project features: "
            f"{', '.join(result.project_features) or '(none)'}; organization features: "
            f"{', '.join(sorted(info.features)) or '(none)'}"
        )
        return 0
    if args.command == "create-token":
        token, record = registry.issue_api_token(
            database, organization=args.organization, scope=args.scope, name=args.name
        )
        print(
            f"admin: {args.scope} token for organization {record.organization_id}"
            f"{f' ({args.name})' if args.name else ''}. It is shown only this once; only its hash is stored.",
            file=sys.stderr,
        )
        print(token)
        return 0
    if args.command == "list-projects":
        infos = registry.read_projects(database)
        if not infos:
            print("no projects registered")
            return 0
        print(f"{'PROJECT':>10}  {'SLUG':<24} {'ORG':>8}  {'ORG SLUG':<24} ORGANIZATION FEATURES")
        for pid in sorted(infos):
            info = infos[pid]
            print(
                f"{pid:>10}  {info.slug:<24} {info.organization_id:>8}  {info.organization_slug:<24} "
                f"{', '.join(sorted(info.features)) or '-'}"
            )
        return 0
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
