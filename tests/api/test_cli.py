"""``python -m pipeline.issues`` and ``python -m pipeline.api`` as users run them, against the emulators."""

from __future__ import annotations

import io
import os
import platform
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest

from pipeline import issues
from tests.api.factories import (
    World,
    add_organization,
    add_project,
    add_token,
    build_world,
    expected_order,
)
from tests.api.test_stream_effect import occurrence, stream_entry_point  # noqa: F401 (a fixture)
from tests.processes import ROOT, start_module, stream_pipeline, wait_for, wait_until_serving
from transforms.core.enums import GroupStatus


@pytest.fixture
def world(spanner_db) -> World:
    return build_world(spanner_db.database, size=40)


def run(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = issues.main(args, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def default_ids(world: World) -> list[str]:
    matching = [g for g in world.groups if g.status == 0 and g.priority in (75, 50) and g.type != 6001]
    return [str(g.group_id) for g in expected_order(matching, "date")]


def test_list_json_follows_cursors_with_all(spanner_db, world):
    code, out, err = run(
        ["list", "--organization", "acme", "--limit", "3", "--all", "--json", *spanner_db.pipeline_args()]
    )
    assert code == 0, err
    assert [issue["id"] for issue in orjson.loads(out)] == default_ids(world)


def test_list_one_page_prints_the_next_cursor_and_the_cursor_continues(spanner_db, world):
    code, out, err = run(
        ["list", "--organization", "1", "--limit", "2", "--json", *spanner_db.pipeline_args()]
    )
    assert code == 0
    first = [issue["id"] for issue in orjson.loads(out)]
    cursor = err.split("--cursor ", 1)[1].strip()
    code, out, _ = run(
        [
            "list",
            "--organization",
            "1",
            "--limit",
            "2",
            "--cursor",
            cursor,
            "--json",
            *spanner_db.pipeline_args(),
        ]
    )
    assert first + [issue["id"] for issue in orjson.loads(out)] == default_ids(world)[:4]


def test_empty_query_means_no_status_filter_and_options_combine(spanner_db, world):
    args = ["list", "--organization", "acme", "--query", "", "--all", "--json", *spanner_db.pipeline_args()]
    code, out, _ = run(args)
    assert len(orjson.loads(out)) == len([g for g in world.groups if g.type != 6001])
    args = [
        "list",
        "--organization",
        "acme",
        "--project",
        "backend",
        "--project",
        "12",
        "--environment",
        "staging",
        "--query",
        "!is:resolved",
        "--sort",
        "freq",
        "--all",
        "--json",
        *spanner_db.pipeline_args(),
    ]
    code, out, _ = run(args)
    assert code == 0
    expected = [
        g
        for g in world.groups
        if g.project_id in (11, 12)
        and "staging" in world.environments[g.group_id]
        and g.status != 1
        and g.type != 6001
    ]
    assert [i["id"] for i in orjson.loads(out)] == [str(g.group_id) for g in expected_order(expected, "freq")]


def test_table_output(spanner_db, world):
    code, out, _ = run(["list", "--organization", "acme", "--limit", "5", *spanner_db.pipeline_args()])
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["ID", "SHORT", "ID"]
    assert len(lines) == 1 + min(5, len(default_ids(world)))
    assert lines[1].split()[0] == default_ids(world)[0]
    code, out, _ = run(
        [
            "list",
            "--organization",
            "acme",
            "--query",
            "is:resolved is:unresolved",
            *spanner_db.pipeline_args(),
        ]
    )
    assert (code, out) == (0, "No issues.\n")


def test_errors_exit_2_with_the_message(spanner_db, world):
    code, _, err = run(
        ["list", "--organization", "acme", "--query", "error.handled:0", *spanner_db.pipeline_args()]
    )
    assert code == 2 and '"error.handled" cannot be searched here' in err
    code, _, err = run(["list", "--organization", "no-such-org", *spanner_db.pipeline_args()])
    assert code == 2 and "does not exist" in err
    code, _, err = run(["delete", "--organization", "acme", *spanner_db.pipeline_args()])
    assert code == 2 and "explicit query" in err


def test_update_and_delete_publish_status_changes(spanner_db, world, pubsub_topics):
    topic = pubsub_topics.create("status-changes")
    where = [*spanner_db.pipeline_args(), "--status_change_topic", topic.topic]
    g, h = world.groups[0], world.other[0]
    code, out, err = run(
        [
            "update",
            "--organization",
            "acme",
            "--id",
            str(g.group_id),
            "--id",
            str(h.group_id),
            "--status",
            "resolved",
            "--in-release",
            "2.0.0",
            "--json",
            *where,
        ]
    )
    assert code == 0, err
    assert orjson.loads(out) == {
        "ids": [str(g.group_id)],
        "status": "resolved",
        "substatus": None,
        "statusDetails": {"inRelease": "2.0.0"},
    }
    (message,) = pubsub_topics.pull(topic)
    payload = orjson.loads(message.data)
    assert payload["fingerprint"] == [f"fp-{g.group_id}"]
    assert payload["resolution"] == {"type": "in_release", "version": "2.0.0"}

    code, out, _ = run(["delete", "--organization", "acme", "--id", str(g.group_id), *where])
    assert code == 0 and out.startswith("Sent a delete for 1 issue(s)")
    (message,) = pubsub_topics.pull(topic)
    assert orjson.loads(message.data)["new_status"] == GroupStatus.PENDING_DELETION

    code, out, _ = run(["delete", "--organization", "acme", "--id", str(h.group_id), *where])
    assert code == 0 and out.startswith("No issues matched")


def test_module_entry_points_run_as_documented(spanner_db, world):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.issues",
            "list",
            "--organization",
            "acme",
            "--limit",
            "3",
            "--json",
            *spanner_db.pipeline_args(),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert [i["id"] for i in orjson.loads(result.stdout)] == default_ids(world)[:3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_http_service_serves_openapi_and_issues(spanner_db, world):
    service = Service(spanner_db)
    try:
        base = service.base
        assert (
            "/api/0/organizations/{organization}/issues/" in httpx.get(f"{base}/openapi.json").json()["paths"]
        )
        response = httpx.get(
            f"{base}/api/0/organizations/acme/issues/",
            params={"limit": 2},
            headers={"Authorization": f"Bearer {world.read_token}"},
        )
        assert response.status_code == 200
        assert [i["id"] for i in response.json()] == default_ids(world)[:2]
        assert 'rel="next"' in response.headers["link"]
    finally:
        service.close()


# ---------------------------------------------------------------------------------------------------------
# Sentry's own client: sentry-cli (the Linux binary npm package @sentry/cli-linux-x64) against the HTTP service

SENTRY_CLI_VERSION = "3.8.0"


@pytest.fixture(scope="session")
def sentry_cli() -> Path:
    """The sentry-cli binary: ``SENTRY_CLI`` if set, else npm's ``@sentry/cli-linux-x64`` installed once into
    ``SENTRY_CLI_CACHE`` (default ``.venv/sentry-cli``, where ``./run_tests.sh`` installs it). Skipped when
    npm is not installed; a failed install fails the tests."""
    explicit = os.environ.get("SENTRY_CLI")
    if explicit:
        return Path(explicit)
    cache = Path(os.environ.get("SENTRY_CLI_CACHE", ROOT / ".venv" / "sentry-cli"))
    binary = cache / "node_modules" / "@sentry" / "cli-linux-x64" / "bin" / "sentry-cli"
    if binary.exists():
        return binary
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip(
            f"sentry-cli's npm package here is for Linux x86_64, not {platform.system()} {platform.machine()}"
        )
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip(
            "npm is not installed: these tests run sentry-cli from npm's @sentry/cli-linux-x64 "
            "(install npm, e.g. apt-get install npm, or set SENTRY_CLI to a sentry-cli binary)"
        )
    cache.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            npm,
            "install",
            "--prefix",
            str(cache),
            "--no-audit",
            "--no-fund",
            f"@sentry/cli-linux-x64@{SENTRY_CLI_VERSION}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0 and binary.exists(), f"npm could not install sentry-cli:\n{result.stderr}"
    return binary


class Service:
    """``python -m pipeline.api`` on a free port (a real uvicorn), for as long as the context lasts."""

    def __init__(self, spanner_db, extra: list[str] | None = None) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = start_module(
            "pipeline.api",
            ["--port", str(self.port), *spanner_db.pipeline_args(), *(extra or [])],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        wait_until_serving(self.base, self.process, timeout=90, failure=self._stderr)

    def _stderr(self) -> str:
        return self.process.stderr.read().decode() if self.process.poll() is not None else ""

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def sentry(binary: Path, service: Service, token: str, *args: str, home: Path) -> subprocess.CompletedProcess:
    """Run sentry-cli against ``service`` with ``token`` (no config file, no update check, no telemetry)."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "SENTRY_URL": service.base + "/",
        "SENTRY_AUTH_TOKEN": token,
        "SENTRY_DISABLE_UPDATE_CHECK": "true",
        "SENTRY_LOAD_DOTENV": "0",
        "SENTRY_LOG_LEVEL": "warn",
    }
    return subprocess.run([str(binary), *args], env=env, capture_output=True, text=True, timeout=120)


def table_column(output: str, column: int = 0) -> list[str]:
    """The cells of one column of sentry-cli's table output (rows start with "| ")."""
    rows = [line for line in output.splitlines() if line.startswith("|")]
    return [row.strip("|").split("|")[column].strip() for row in rows[1:]]


def test_sentry_cli_info_organizations_projects_and_issue_lists(spanner_db, world, sentry_cli, tmp_path):
    service = Service(spanner_db)
    try:
        result = sentry(sentry_cli, service, world.read_token, "info", "--no-defaults", home=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "Method: Auth Token" in result.stdout and "- event:read" in result.stdout

        result = sentry(sentry_cli, service, world.read_token, "organizations", "list", home=tmp_path)
        assert result.returncode == 0, result.stderr
        assert table_column(result.stdout, 2) == ["acme"]  # ID, Name, Slug, ...

        result = sentry(
            sentry_cli, service, world.read_token, "projects", "list", "--org", "acme", home=tmp_path
        )
        assert result.returncode == 0, result.stderr
        assert sorted(table_column(result.stdout, 1)) == ["backend", "frontend", "worker"]

        args = ["issues", "list", "--org", "acme", "--project", "backend"]
        result = sentry(
            sentry_cli, service, world.read_token, *args, "--query", "is:unresolved", home=tmp_path
        )
        assert result.returncode == 0, result.stderr
        expected = [g for g in world.groups if g.project_id == 11 and g.status == 0 and g.type != 6001]
        assert table_column(result.stdout) == [str(g.group_id) for g in expected_order(expected, "date")]

        result = sentry(
            sentry_cli, service, world.read_token, *args, "--query", "level:error !is:resolved", home=tmp_path
        )
        expected = [
            g
            for g in world.groups
            if g.project_id == 11 and g.status != 1 and g.level == 40 and g.type != 6001
        ]
        assert table_column(result.stdout) == [str(g.group_id) for g in expected_order(expected, "date")]

        result = sentry(
            sentry_cli,
            service,
            world.read_token,
            *args,
            "--query",
            "browser:chrome* is:unresolved",
            home=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        expected = [
            g
            for g in world.groups
            if g.project_id == 11
            and dict(g.tags).get("browser") == "Chrome 120"
            and g.status == 0
            and g.type != 6001
        ]
        assert table_column(result.stdout) == [str(g.group_id) for g in expected_order(expected, "date")]

        result = sentry(
            sentry_cli, service, world.read_token, *args, "--query", "error.handled:0", home=tmp_path
        )
        assert result.returncode != 0
        assert "cannot be searched here" in result.stderr + result.stdout

        result = sentry(sentry_cli, service, world.read_token, "info", "--no-defaults", home=tmp_path)
        bad = sentry(sentry_cli, service, "sntryu_" + "0" * 64, "organizations", "list", home=tmp_path)
        assert bad.returncode != 0
    finally:
        service.close()


@pytest.mark.slow
@pytest.mark.usefixtures("stream_entry_point")
def test_sentry_cli_resolve_mute_and_unresolve_take_effect_through_the_pipeline(
    spanner_db, pubsub_topics, sentry_cli, tmp_path
):
    database = spanner_db.database
    add_organization(database, 1, "acme")
    add_project(database, 1, 1, "backend")
    token = add_token(database, 1, "write")
    topic = pubsub_topics.create("input")
    log = tmp_path / "pipeline.log"
    with stream_pipeline(topic.subscription, spanner_db.pipeline_args(), log):
        service = Service(spanner_db, ["--status_change_topic", topic.topic])
        home = tmp_path / "home"
        home.mkdir()

        def cli(*args: str) -> subprocess.CompletedProcess:
            result = sentry(
                sentry_cli, service, token, *args, "--org", "acme", "--project", "backend", home=home
            )
            assert result.returncode == 0, result.stdout + result.stderr
            return result

        def listed(query: str) -> list[str]:
            return table_column(cli("issues", "list", "--query", query).stdout)

        try:
            for fingerprint in ("checkout-timeout", "login-500", "search-slow"):
                pubsub_topics.publish(
                    topic, orjson.dumps(occurrence(1, fingerprint)), content_type="application/json"
                )
            ids = wait_for(lambda: listed("") if len(listed("")) == 3 else None, "three groups", log=log)
            first, second, third = ids

            cli("issues", "resolve", "--id", first)
            wait_for(lambda: listed("is:resolved") == [first], "the resolve", log=log)
            cli("issues", "mute", "--id", second)
            wait_for(lambda: listed("is:ignored") == [second], "the mute", log=log)
            assert listed("is:archived_forever") == [second]
            cli("issues", "unresolve", "--id", first)
            wait_for(
                lambda: sorted(listed("is:unresolved")) == sorted([first, third]), "the unresolve", log=log
            )
            assert listed("is:ongoing") == [first] or sorted(listed("is:unresolved")) == sorted(
                [first, third]
            )

            cli("issues", "resolve", "--status", "unresolved")  # every unresolved issue of the project
            wait_for(
                lambda: sorted(listed("is:resolved")) == sorted([first, third]), "the bulk resolve", log=log
            )
            assert listed("is:unresolved") == []
        finally:
            service.close()
