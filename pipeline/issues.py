"""The issue index from the command line, straight against Spanner (reads) and Pub/Sub (bulk changes).

    python -m pipeline.issues list --organization N [--project N ...] [--environment E] [--query Q] [--sort S]
        [--limit N] [--cursor C] [--all] [--json]
    python -m pipeline.issues update --organization N (--id ID ... | --query Q | --status-filter S)
        --status S [--substatus X] [--in-release V | --in-next-release] [--snooze-duration MIN] [--json]
    python -m pipeline.issues delete --organization N (--id ID ... | --query Q) [--project N ...] [--json]

Organizations and projects are ids or slugs. Without ``--query`` the list uses the default query
(``is:unresolved issue.priority:[high, medium]``); ``--query ''`` means no status or priority filter.
``--all`` follows cursors to the end. Output is a table, or Sentry's JSON with ``--json`` (one JSON array, also with ``--all``).
Every tool flag of the pipeline (``--spanner_project`` ... ``--status_change_topic``) works here too; no HTTP
service is needed. Bulk changes are the HTTP service's: the same selection rules and status-change messages.
Exit status: 0 on success, 2 for a request the index refuses (bad query, unknown organization...), 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import orjson

from api import backend
from api.errors import ApiError
from api.service import IssueIndex, ListRequest, Selection


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.issues", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--organization", required=True, help="organization id or slug")
        sub.add_argument(
            "--project", action="append", default=[], help="project id or slug (repeatable; default: all)"
        )
        sub.add_argument(
            "--environment",
            action="append",
            default=[],
            help="only issues seen in this environment (repeatable)",
        )
        sub.add_argument("--json", action="store_true", help="print Sentry's JSON instead of a table")
        backend.add_backend_arguments(sub)

    listing = commands.add_parser("list", help="list and search issues")
    common(listing)
    listing.add_argument(
        "--query",
        default=None,
        help="search query; '' for no status or priority filter (default: the default query)",
    )
    listing.add_argument("--sort", default=None, help="date (default), new, freq or priority")
    listing.add_argument("--limit", default=None, help="page size, 1 to 100 (default 100)")
    listing.add_argument("--cursor", default=None, help="start at this cursor (printed after a page)")
    listing.add_argument("--all", action="store_true", help="follow cursors to the last page")
    listing.add_argument(
        "--stats-period", "--statsPeriod", dest="stats_period", default=None, help="e.g. 24h, 14d"
    )

    update = commands.add_parser("update", help="bulk update the status of issues")
    common(update)
    _selection_arguments(update)
    update.add_argument(
        "--status",
        required=True,
        help="resolved, resolvedInNextRelease, unresolved, ignored (muted = ignored)",
    )
    update.add_argument("--substatus", default=None, help="e.g. ongoing, archived_until_escalating")
    update.add_argument(
        "--in-release", dest="in_release", default=None, help="resolve in this release version"
    )
    update.add_argument(
        "--in-next-release", dest="in_next_release", action="store_true", help="resolve in the next release"
    )
    update.add_argument(
        "--snooze-duration",
        dest="snooze_duration",
        type=int,
        default=None,
        help="ignore with a condition (min)",
    )

    delete = commands.add_parser("delete", help="bulk delete issues")
    common(delete)
    _selection_arguments(delete)
    return parser.parse_args(argv)


def _selection_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--id", action="append", default=[], help="issue id (repeatable)")
    sub.add_argument(
        "--query", default=None, help="without --id: act on the first 1000 matches of this query"
    )
    sub.add_argument(
        "--status-filter",
        dest="status_filter",
        default=None,
        help="without --id: act on the first 1000 issues with this status (unresolved, resolved, ignored)",
    )


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = parse_args(argv)
    where = backend.Backend.from_args(args)
    index = IssueIndex(backend.database(where), publisher=backend.publisher(where))
    try:
        organization = index.organization(args.organization)
        if args.command == "list":
            return _list(index, organization, args, out, err)
        selection = Selection(args.id, args.project, args.environment, args.query, args.status_filter)
        if args.command == "update":
            mutation = index.update_issues(organization, selection, _update_body(args))
        else:
            mutation = index.delete_issues(organization, selection)
    except ApiError as exc:
        print(f"error: {exc.detail}", file=err)
        return 2 if exc.status in (400, 403, 404) else 1
    if args.json:
        out.write(orjson.dumps(mutation.body if mutation else {"ids": []}).decode() + "\n")
    elif mutation is None:
        print("No issues matched; nothing was sent.", file=out)
    else:
        verb = "update" if args.command == "update" else "delete"
        print(f"Sent a {verb} for {len(mutation.ids)} issue(s): {', '.join(mutation.ids)}", file=out)
    return 0


def _update_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"status": args.status}
    if args.substatus is not None:
        body["substatus"] = args.substatus
    details: dict[str, Any] = {}
    if args.in_release is not None:
        details["inRelease"] = args.in_release
    if args.in_next_release:
        details["inNextRelease"] = True
    if details:
        body["statusDetails"] = details
    if args.snooze_duration is not None:
        body["snoozeDuration"] = args.snooze_duration
    return body


def _list(index: IssueIndex, organization: Any, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    cursor = args.cursor
    issues: list[dict[str, Any]] = []
    while True:
        request = ListRequest(
            projects=args.project,
            environments=args.environment,
            query=args.query,
            sort=args.sort,
            stats_period=args.stats_period,
            limit=args.limit,
            cursor=cursor,
        )
        page = index.list_issues(organization, request, count_hits=False)
        issues.extend(page.issues)
        if not (args.all and page.has_next):
            break
        cursor = page.next.encode()
    if args.json:
        out.write(orjson.dumps(issues).decode() + "\n")
    else:
        out.write(format_table(issues))
    if page.has_next and not args.all:
        print(f"More issues: --cursor {page.next.encode()}", file=err)
    return 0


_COLUMNS = (
    ("ID", "id"),
    ("SHORT ID", "shortId"),
    ("STATUS", "status"),
    ("SUBSTATUS", "substatus"),
    ("PRIORITY", "priority"),
    ("LEVEL", "level"),
    ("COUNT", "count"),
    ("LAST SEEN", "lastSeen"),
    ("TITLE", "title"),
)
_TITLE_WIDTH = 60


def format_table(issues: list[dict[str, Any]]) -> str:
    """A plain-text table, one issue per line (titles cut to 60 characters); a note when there are none."""
    if not issues:
        return "No issues.\n"
    rows = [[_cell(issue, key) for _, key in _COLUMNS] for issue in issues]
    widths = [max(len(name), *(len(row[i]) for row in rows)) for i, (name, _) in enumerate(_COLUMNS)]
    lines = ["  ".join(name.ljust(widths[i]) for i, (name, _) in enumerate(_COLUMNS)).rstrip()]
    lines += ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    return "\n".join(lines) + "\n"


def _cell(issue: dict[str, Any], key: str) -> str:
    value = issue.get(key)
    text = "-" if value is None else str(value)
    text = " ".join(text.split())
    if key == "title" and len(text) > _TITLE_WIDTH:
        text = text[: _TITLE_WIDTH - 3] + "..."
    return text


if __name__ == "__main__":
    sys.exit(main())
