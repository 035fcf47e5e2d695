"""The local stack: start, health, reuse, stop, and the messages when a prerequisite is missing."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.stack import (
    PrerequisiteError,
    PubSubEmulator,
    RedisServer,
    SpannerEmulator,
    Stack,
    StackConfig,
    StackError,
    cloud_sdk_root,
    java_executable,
    processes,
    redis_server_executable,
)

REPO = Path(__file__).resolve().parents[2]


def free_ports(n: int) -> list[int]:
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.stack", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture
def own_ports_env(tmp_path: Path) -> dict[str, str]:
    """An environment for a second stack on free ports, with its own stack folder."""
    pubsub, grpc, rest, redis_port = free_ports(4)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STACK_")}
    env.update(
        STACK_PUBSUB_PORT=str(pubsub),
        STACK_SPANNER_GRPC_PORT=str(grpc),
        STACK_SPANNER_REST_PORT=str(rest),
        STACK_REDIS_PORT=str(redis_port),
        STACK_DIR=str(tmp_path / "stack"),
    )
    return env


@pytest.mark.integration
@pytest.mark.slow
def test_cli_starts_reports_healthy_reuses_and_stops_the_stack(own_ports_env: dict[str, str]) -> None:
    env = own_ports_env
    stack = Stack(StackConfig.from_env(env))
    try:
        first = run_cli("start", env=env)
        assert first.returncode == 0, first.stderr
        assert first.stdout.count(": started on port") == 3
        assert stack.healthy()
        pids = {p.name: json.loads(p.read_text())["pid"] for p in stack.config.run.glob("*.json")}
        assert set(pids) == {
            f"pubsub-{env['STACK_PUBSUB_PORT']}.json",
            f"spanner-{env['STACK_SPANNER_GRPC_PORT']}.json",
            f"redis-{env['STACK_REDIS_PORT']}.json",
        }
        assert {p.name for p in stack.config.logs.iterdir()} == {"pubsub.log", "spanner.log", "redis.log"}

        status = run_cli("status", env=env)
        assert status.returncode == 0
        assert status.stdout.count("healthy") == 3

        second = run_cli("start", env=env)
        assert second.returncode == 0, second.stderr
        assert second.stdout.count("already running") == 3
        assert "reusing it" in second.stdout
        assert {p.name: json.loads(p.read_text())["pid"] for p in stack.config.run.glob("*.json")} == pids

        exports = run_cli("env", env=env).stdout.splitlines()
        assert f"export PUBSUB_EMULATOR_HOST=localhost:{env['STACK_PUBSUB_PORT']}" in exports
        assert f"export SPANNER_EMULATOR_HOST=localhost:{env['STACK_SPANNER_GRPC_PORT']}" in exports
        assert f"export REDIS_URL=redis://localhost:{env['STACK_REDIS_PORT']}/0" in exports

        stopped = run_cli("stop", env=env)
        assert stopped.returncode == 0
        assert stopped.stdout.count("stopped (pid") == 3
        assert not any(s.healthy() for s in stack.services)
        assert list(stack.config.run.glob("*.json")) == []
        for pid in pids.values():
            assert not processes.alive(pid)
        after = run_cli("status", env=env)
        assert after.returncode == 1
        assert after.stdout.count("not running") == 3
    finally:
        stack.stop(report=lambda line: None)


@pytest.mark.integration
def test_extra_spanner_emulator_with_fault_injection_starts_and_stops_on_its_own_ports(
    tmp_path: Path,
) -> None:
    grpc, rest = free_ports(2)
    emulator = SpannerEmulator(
        grpc, rest, StackConfig(stack_dir=tmp_path), extra_flags=["--enable_fault_injection"], name="faults"
    )
    try:
        assert "started on port" in emulator.start()
        pid = emulator.recorded_pid()
        assert pid is not None
        assert "--enable_fault_injection" in processes.cmdline(pid)
        assert emulator.host == f"localhost:{grpc}"
        assert "reusing it" in emulator.start()
    finally:
        emulator.stop()
    assert not emulator.healthy()
    assert emulator.recorded_pid() is None


def test_port_taken_by_another_program_is_an_error_and_nothing_is_started(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        redis = RedisServer(port, StackConfig(stack_dir=tmp_path))
        with pytest.raises(
            StackError, match=f"port {port} is in use by a program that is not a healthy Redis"
        ):
            redis.start()
    assert not (tmp_path / "run").exists() or list((tmp_path / "run").iterdir()) == []


def test_stop_does_not_signal_a_recycled_pid(tmp_path: Path) -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        config = StackConfig(stack_dir=tmp_path)
        redis = RedisServer(free_ports(1)[0], config)
        config.run.mkdir(parents=True)
        # A pid file left behind, whose pid now belongs to an unrelated process.
        redis.pid_file.write_text(json.dumps({"name": "redis", "pid": sleeper.pid, "marker": "redis-server"}))
        Stack(config).stop(report=lambda line: None)
        assert sleeper.poll() is None
        assert not redis.pid_file.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_cloud_cli_is_found_from_gcloud_on_path_through_symlinks(tmp_path: Path) -> None:
    sdk = tmp_path / "google-cloud-sdk"
    (sdk / "bin").mkdir(parents=True)
    gcloud = sdk / "bin" / "gcloud"
    gcloud.write_text("#!/bin/sh\n")
    gcloud.chmod(0o755)
    (sdk / "lib").mkdir()
    (sdk / "lib" / "gcloud.py").write_text("")
    on_path = tmp_path / "usr-bin"
    on_path.mkdir()
    (on_path / "gcloud").symlink_to(gcloud)
    assert cloud_sdk_root({"PATH": str(on_path)}, fallbacks=()) == sdk


def test_gcloud_wrapper_outside_the_cli_folder_falls_back_to_the_usual_folders(tmp_path: Path) -> None:
    sdk = tmp_path / "google-cloud-sdk"
    (sdk / "bin").mkdir(parents=True)
    (sdk / "bin" / "gcloud").write_text("#!/bin/sh\n")
    (sdk / "lib").mkdir()
    (sdk / "lib" / "gcloud.py").write_text("")
    wrapper_dir = tmp_path / "usr" / "bin"
    wrapper_dir.mkdir(parents=True)
    wrapper = wrapper_dir / "gcloud"
    wrapper.write_text(f'#!/bin/sh\nexec {sdk}/bin/gcloud "$@"\n')
    wrapper.chmod(0o755)
    assert cloud_sdk_root({"PATH": str(wrapper_dir)}, fallbacks=(str(sdk),)) == sdk


def test_cloudsdk_root_overrides_gcloud_on_path(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    assert cloud_sdk_root({"PATH": os.environ["PATH"], "CLOUDSDK_ROOT": str(tmp_path)}) == tmp_path


def test_missing_cloud_cli_names_the_packages_to_install(tmp_path: Path) -> None:
    with pytest.raises(PrerequisiteError) as error:
        cloud_sdk_root({"PATH": str(tmp_path)}, fallbacks=())
    message = str(error.value)
    assert "no `gcloud` on PATH and CLOUDSDK_ROOT is not set" in message
    assert "google-cloud-cli-pubsub-emulator" in message
    assert "google-cloud-cli-spanner-emulator" in message


def test_cloudsdk_root_that_is_not_a_cli_installation_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PrerequisiteError, match="is not a Google Cloud CLI installation"):
        cloud_sdk_root({"CLOUDSDK_ROOT": str(tmp_path / "nowhere")})


def test_missing_emulator_components_name_their_debian_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("CLOUDSDK_ROOT", str(tmp_path))
    config = StackConfig(stack_dir=tmp_path / "stack")
    with pytest.raises(PrerequisiteError, match="apt-get install google-cloud-cli-pubsub-emulator"):
        PubSubEmulator(1, config).command()
    with pytest.raises(PrerequisiteError, match="apt-get install google-cloud-cli-spanner-emulator"):
        SpannerEmulator(1, 2, config).command()


def test_missing_java_is_named_for_the_pubsub_emulator(tmp_path: Path) -> None:
    with pytest.raises(PrerequisiteError, match=r"Java 11 or newer.*apt-get install default-jre-headless"):
        java_executable({"PATH": str(tmp_path)})


def test_missing_redis_server_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(PrerequisiteError, match="sudo apt-get install redis-server"):
        redis_server_executable({"PATH": str(tmp_path)}, install=False)


def test_cli_reports_every_missing_prerequisite_before_starting_anything(
    own_ports_env: dict[str, str],
) -> None:
    env = {**own_ports_env, "CLOUDSDK_ROOT": str(Path(own_ports_env["STACK_DIR"]).parent)}
    Path(env["CLOUDSDK_ROOT"], "bin").mkdir(exist_ok=True)
    result = run_cli("start", env=env)
    assert result.returncode == 2
    assert "google-cloud-cli-pubsub-emulator" in result.stderr
    assert "google-cloud-cli-spanner-emulator" in result.stderr
    assert "Traceback" not in result.stderr
    run_dir = Path(env["STACK_DIR"]) / "run"
    assert not run_dir.exists() or list(run_dir.iterdir()) == []


def test_invalid_port_in_environment_is_reported() -> None:
    with pytest.raises(StackError, match="STACK_REDIS_PORT='abc' is not a port number"):
        StackConfig.from_env({"STACK_REDIS_PORT": "abc"})
