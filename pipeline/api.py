"""The issue index HTTP service.

    python -m pipeline.api [--host 127.0.0.1] [--port 8000] [--spanner_project P] [--spanner_instance I]
        [--spanner_database D] [--pubsub_project P] [--status_change_topic T] [--public_url URL]

Serves Sentry's organization and project issue index endpoints (``api.app``) and the web interface
(``web.routes``: sign in at ``/`` with a token) over the pipeline's Spanner database; bulk updates and deletes are published to ``--status_change_topic`` (the pipeline's input topic).
The OpenAPI document is at ``/openapi.json``. Authenticate with a token from
``python -m pipeline.admin create-token``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from api import backend

try:  # api.service too: its tag reads mount Sentry's tags endpoints (api.tag_index)
    from api.app import create_app
    from api.service import IssueIndex
    from web.routes import install as install_web
except ModuleNotFoundError as missing:  # the HTTP service is the package's "api" extra
    if missing.name not in ("fastapi", "starlette", "jinja2"):
        raise
    raise SystemExit(
        f"pipeline.api: {missing.name} is not installed; the HTTP service needs the 'api' extra: "
        "pip install 'occurrence-pipeline[api]' (or -e '.[api]' in a checkout)"
    ) from None


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.api", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    parser.add_argument(
        "--public_url",
        "--public-url",
        dest="public_url",
        default=None,
        help="base URL of the issue pages; when set, issues carry a permalink under it",
    )
    parser.add_argument(
        "--log_level", "--log-level", dest="log_level", default="info", help="uvicorn log level"
    )
    parser.add_argument(
        "--access_log", "--access-log", dest="access_log", action="store_true", help="log every request"
    )
    backend.add_backend_arguments(parser)
    return parser.parse_args(argv)


def build_index(args: argparse.Namespace) -> IssueIndex:
    where = backend.Backend.from_args(args)
    return IssueIndex(
        backend.database(where), publisher=backend.publisher(where), permalink_base=args.public_url
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    import uvicorn

    index = build_index(args)
    app = create_app(index)
    install_web(app, index)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=args.access_log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
