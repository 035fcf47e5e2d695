"""``python -m pipeline.issues`` and ``python -m pipeline.api`` as users run them, against the emulators."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest

from pipeline import issues
from tests.api.factories import World, build_world, expected_order
from transforms.core.enums import GroupStatus

ROOT = Path(__file__).resolve().parents[2]


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


def test_empty_query_means_no_filter_and_options_combine(spanner_db, world):
    args = ["list", "--organization", "acme", "--query", "", "--all", "--json", *spanner_db.pipeline_args()]
    code, out, _ = run(args)
    assert len(orjson.loads(out)) == len(world.groups)
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
    code, _, err = run(["list", "--organization", "acme", "--query", "nope:x", *spanner_db.pipeline_args()])
    assert code == 2 and 'unsupported search key "nope"' in err
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
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [sys.executable, "-m", "pipeline.api", "--port", str(port), *spanner_db.pipeline_args()],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, server.stderr.read().decode()
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.2)
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
        server.terminate()
        server.wait(timeout=30)
