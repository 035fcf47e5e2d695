"""The Dataflow job ``python -m pipeline.stream --runner DataflowRunner ...`` builds, checked without submitting.

Beam's DataflowRunner with ``--dry_run=True`` does everything but the submission: it validates the options,
builds the sdist of ``--setup_file``, translates the pipeline to the runner API (the portable pipeline the
Dataflow service runs) and assembles the job request, then returns it (``result.job``). No network is used
(the GCS locations are only checked for their form), so the graph can be inspected here: step names (what
``--update`` matches a running job's steps by), the native Pub/Sub source and sink, and the coders of the
keyed, stateful step.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from apache_beam.portability import common_urns
from apache_beam.portability.api import beam_runner_api_pb2

from pipeline import stream

ROOT = Path(__file__).resolve().parents[2]
SUBSCRIPTION = "projects/my-project/subscriptions/occurrences-pipeline"
DEAD_LETTER_TOPIC = "projects/my-project/topics/occurrences-dead-letters"
# The README's launch command ("Running on Dataflow"), with values filled in.
LAUNCH = [
    "--runner=DataflowRunner",
    "--project=my-project",
    "--region=europe-west1",
    "--temp_location=gs://my-bucket/tmp",
    f"--setup_file={ROOT / 'setup.py'}",
    "--job_name=occurrence-pipeline",
    "--service_account_email=occurrence-pipeline@my-project.iam.gserviceaccount.com",
    "--network=my-vpc",
    "--subnetwork=regions/europe-west1/subnetworks/my-subnet",
    f"--input_subscription={SUBSCRIPTION}",
    f"--dead_letter_topic={DEAD_LETTER_TOPIC}",
    "--timestamp_attribute=event_time",
    "--spanner_project=my-project",
    "--spanner_instance=issues",
    "--spanner_database=occurrences",
    "--redis_url=redis://10.0.0.3:6379/0?socket_connect_timeout=1&socket_timeout=1",
]
OUR_STEPS = {
    "RefreshProjects",
    "ReadMessages",
    "DecodeMessages",
    "CheckProjects",
    "KeyByGroup",
    "ApplyPerGroup",
    "CollectDeadLetters",
    "WriteDeadLetters",
}
STATEFUL_STEP = "ApplyPerGroup/ApplyEngine/ParDo(ApplyPerGroupFn)"


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """The job request the runner would send (built offline)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("PUBSUB_EMULATOR_HOST", "SPANNER_EMULATOR_HOST", "REDIS_URL"):
            patch.delenv(name, raising=False)
        result = stream.start(stream.make_options([*LAUNCH, "--dry_run=True"]))
    return result.job


def _transforms(job) -> dict[str, beam_runner_api_pb2.PTransform]:
    return {t.unique_name: t for t in job.proto_pipeline.components.transforms.values()}


def _coder(job, coder_id: str) -> tuple[str, list]:
    coder = job.proto_pipeline.components.coders[coder_id]
    return coder.spec.urn, [_coder(job, component) for component in coder.component_coder_ids]


def test_the_job_is_a_streaming_job_with_its_name(job) -> None:
    assert job.proto.name == "occurrence-pipeline"
    assert job.proto.type_.name == "JOB_TYPE_STREAMING"


def test_top_level_steps_have_stable_readable_names(job) -> None:
    top = {name for name in _transforms(job) if "/" not in name and not name.startswith("ref_")}
    assert top == OUR_STEPS
    names = set(_transforms(job))
    assert {"ApplyPerGroup/AttachProject", "ApplyPerGroup/ApplyEngine", STATEFUL_STEP} <= names


def test_the_job_takes_up_the_keys_left_waiting_for_events_when_it_starts(job) -> None:
    """``ApplyPerGroup/WakeWaitingKeys`` reads ``WaitingKeys`` once (an impulse) and its wake-ups join the
    messages before the stateful step (``transforms.waiting_keys``)."""
    transforms = _transforms(job)
    wake = "ApplyPerGroup/WakeWaitingKeys"
    assert {
        wake,
        f"{wake}/Start",
        f"{wake}/ReadWaitingKeys",
        f"{wake}/Wake",
        "ApplyPerGroup/WithWakes",
    } <= set(transforms)
    assert transforms[f"{wake}/Start"].spec.urn == common_urns.primitives.IMPULSE.urn
    engine_input = set(transforms[STATEFUL_STEP].inputs.values())
    assert engine_input == set(transforms["ApplyPerGroup/WithWakes"].outputs.values())


def test_pubsub_source_and_sink_are_dataflow_native_with_the_given_resources(job) -> None:
    transforms = _transforms(job)
    reads = [t for t in transforms.values() if t.spec.urn == common_urns.composites.PUBSUB_READ.urn]
    writes = [t for t in transforms.values() if t.spec.urn == common_urns.composites.PUBSUB_WRITE.urn]
    assert [t.unique_name.split("/")[0] for t in reads] == ["ReadMessages"]
    assert [t.unique_name.split("/")[0] for t in writes] == ["WriteDeadLetters"]
    read = beam_runner_api_pb2.PubSubReadPayload.FromString(reads[0].spec.payload)
    # No timestamp attribute for Dataflow's reader: a value it cannot parse would block its pull for ever.
    assert (read.subscription, read.timestamp_attribute, read.with_attributes) == (SUBSCRIPTION, "", True)
    write = beam_runner_api_pb2.PubSubWritePayload.FromString(writes[0].spec.payload)
    assert write.topic == DEAD_LETTER_TOPIC


def test_the_timestamp_attribute_is_read_by_our_step_whose_dead_letters_are_published(job) -> None:
    """``--timestamp_attribute event_time`` goes to ``ReadMessages/ToRawMessage`` (``ToRawMessage``), whose
    dead letters (an attribute it cannot read) are among those ``CollectDeadLetters`` publishes."""
    from apache_beam.internal import pickler

    transforms = _transforms(job)
    (step,) = [
        t
        for name, t in transforms.items()
        if name.startswith("ReadMessages/ToRawMessage") and t.spec.urn == common_urns.primitives.PAR_DO.urn
    ]
    payload = beam_runner_api_pb2.ParDoPayload.FromString(step.spec.payload)
    do_fn = pickler.loads(payload.do_fn.payload)[0]
    assert type(do_fn).__name__ == "ToRawMessage" and do_fn._attribute == "event_time"
    assert set(step.outputs) == {"None", "dead_letter"}
    assert step.outputs["dead_letter"] in set(transforms["CollectDeadLetters"].inputs.values())


def test_the_stateful_step_is_keyed_by_a_deterministic_string_coder_for_state_and_timers(job) -> None:
    step = _transforms(job)[STATEFUL_STEP]
    payload = beam_runner_api_pb2.ParDoPayload.FromString(step.spec.payload)
    assert set(payload.state_specs) == {"buffer", "key_state", "meta"}
    assert not payload.side_inputs  # side inputs are read by ApplyPerGroup/AttachProject
    (main_input,) = step.inputs.values()
    pcollection = job.proto_pipeline.components.pcollections[main_input]
    urn, (key_coder, _value_coder) = _coder(job, pcollection.coder_id)
    assert urn == common_urns.coders.KV.urn
    assert key_coder == (common_urns.coders.STRING_UTF8.urn, [])
    for spec in payload.timer_family_specs.values():
        timer_urn, (timer_key_coder, _window_coder) = _coder(job, spec.timer_family_coder_id)
        assert timer_urn == common_urns.coders.TIMER.urn
        assert timer_key_coder == key_coder


def test_every_stateful_step_has_a_deterministic_key_coder(job) -> None:
    for name, step in _transforms(job).items():
        if step.spec.urn != common_urns.primitives.PAR_DO.urn:
            continue
        payload = beam_runner_api_pb2.ParDoPayload.FromString(step.spec.payload)
        if not payload.state_specs and not payload.timer_family_specs:
            continue
        main_inputs = [pc for tag, pc in step.inputs.items() if tag not in payload.side_inputs]
        _urn, (key_coder, _value) = _coder(
            job, job.proto_pipeline.components.pcollections[main_inputs[0]].coder_id
        )
        assert key_coder[0] == common_urns.coders.STRING_UTF8.urn, name


def test_only_the_per_group_step_keeps_timers_so_a_drain_can_finish(job) -> None:
    """The project registry is re-read by Beam's PeriodicImpulse, which stops on drain: a looping
    processing-time timer (the local runner's ticker) would keep a draining job alive."""
    with_timers = []
    for name, step in _transforms(job).items():
        if step.spec.urn == common_urns.primitives.PAR_DO.urn:
            payload = beam_runner_api_pb2.ParDoPayload.FromString(step.spec.payload)
            if payload.timer_family_specs:
                with_timers.append(name)
    assert with_timers == [STATEFUL_STEP]
    assert any(name.startswith("RefreshProjects/Tick/") for name in _transforms(job))


def test_the_setup_file_is_staged_as_the_workers_package(job) -> None:
    staged = set()
    for environment in job.proto_pipeline.components.environments.values():
        for dependency in environment.dependencies:
            if dependency.role_urn == common_urns.artifact_roles.STAGING_TO.urn:
                role = beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(dependency.role_payload)
                staged.add(role.staged_name)
    assert "workflow.tar.gz" in staged  # Beam's name for the sdist of --setup_file


def test_the_sdist_of_setup_py_installs_a_package_that_runs_the_pipeline_code(tmp_path: Path) -> None:
    """What a Dataflow worker does with --setup_file: build the sdist, pip install it, import from it."""
    from tests.infra.test_packaging import _sdist  # that module imports this one

    sdist = _sdist(ROOT, tmp_path / "dist")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for wanted in (
        "pipeline/stream.py",
        "pipeline/options.py",
        "transforms/apply_per_group.py",
        "transforms/core/engine/engine.py",
        "schemas/spanner.sql",
        "schemas/ingest_pb2.py",
        "setup.py",
    ):
        assert wanted in names, wanted
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(sdist),
        ],
        check=True,
        capture_output=True,
    )
    check = (
        "import pipeline.stream, transforms.storage.spanner_rows as rows, schemas.ingest_pb2;"
        f"assert pipeline.stream.__file__.startswith({str(site)!r}), pipeline.stream.__file__;"
        "assert rows.index_cells_per_row()['GroupHashes'] == 1"  # read from the packaged schemas/spanner.sql
    )
    run = subprocess.run(
        [sys.executable, "-c", check],
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr


def _local_dataflow_graph() -> beam_runner_api_pb2.Pipeline:
    """The README's launch command on the local runner with ``--graph dataflow``, built (not run)."""
    import apache_beam as beam

    args = [arg for arg in LAUNCH if not arg.startswith("--runner=")]
    options = stream.make_options([*args, "--runner=BundleBasedDirectRunner", "--graph=dataflow"])
    assert stream.graph(options) == "dataflow"
    pipeline = beam.Pipeline(options=options)
    stream.build(pipeline, options)
    return pipeline.to_runner_api()


def _structure(proto: beam_runner_api_pb2.Pipeline, coder_id: str) -> tuple:
    coder = proto.components.coders[coder_id]
    return coder.spec.urn, tuple(_structure(proto, component) for component in coder.component_coder_ids)


def _dofn(transform: beam_runner_api_pb2.PTransform) -> tuple:
    """A ParDo's DoFn class, state, timers and side inputs."""
    from apache_beam.internal import pickler

    payload = beam_runner_api_pb2.ParDoPayload.FromString(transform.spec.payload)
    fn = pickler.loads(payload.do_fn.payload)[0]
    return (
        type(fn).__qualname__,
        sorted(payload.state_specs),
        sorted(payload.timer_family_specs),
        sorted(payload.side_inputs),
    )


def test_the_dataflow_graph_on_the_local_runner_has_the_jobs_steps_dofns_and_coders(job) -> None:
    """``--graph dataflow`` on the local runner builds the steps the Dataflow job has (``--dry_run``), with the
    same DoFns and the same coders on every output, but for what a runner itself decides: the local runner
    cannot run the registry refresh's ``PeriodicImpulse`` (``RefreshProjects/Tick``), so it gets the looping
    timer (``RefreshProjects/Start`` and the ticker DoFn), and Dataflow runs Beam's Pub/Sub sink as its own
    native step."""
    dataflow = job.proto_pipeline
    local = _local_dataflow_graph()
    steps = {
        t.unique_name: t
        for t in dataflow.components.transforms.values()
        if not t.unique_name.startswith("ref_")
    }
    built = {
        t.unique_name: t for t in local.components.transforms.values() if not t.unique_name.startswith("ref_")
    }
    tick, start = "RefreshProjects/Tick", "RefreshProjects/Start"
    assert {name for name in steps.keys() - built.keys()} == {n for n in steps if n.startswith(tick)}
    assert {name for name in built.keys() - steps.keys()} == {n for n in built if n.startswith(start)}
    sink = "WriteDeadLetters/Publish/ParDo(_PubSubWriteDoFn)"
    assert steps[sink].spec.urn == common_urns.composites.PUBSUB_WRITE.urn
    assert built[sink].spec.urn == common_urns.primitives.PAR_DO.urn
    compared = set()
    for name in sorted(steps.keys() & built.keys()):
        theirs, ours = steps[name], built[name]
        if name == sink or (name.startswith("WriteDeadLetters") and not theirs.outputs):
            continue  # Dataflow's native sink has no output
        assert theirs.spec.urn == ours.spec.urn, name
        assert set(theirs.outputs) == set(ours.outputs), name
        for tag, pcollection in theirs.outputs.items():
            assert _structure(dataflow, dataflow.components.pcollections[pcollection].coder_id) == _structure(
                local, local.components.pcollections[ours.outputs[tag]].coder_id
            ), (name, tag)
        if name == "RefreshProjects/ReadPeriodically":  # the ticker, not PeriodicImpulse's reader
            assert (_dofn(theirs)[0], _dofn(ours)[0]) == ("_ReadSnapshot", "_Ticker")
        elif theirs.spec.urn == common_urns.primitives.PAR_DO.urn:
            assert _dofn(theirs) == _dofn(ours), name
        compared.add(name)
    assert {
        "ReadMessages/ToRawMessage",
        "DecodeMessages",
        "CheckProjects",
        "KeyByGroup",
        "ApplyPerGroup/AttachProject",
        STATEFUL_STEP,
        "CollectDeadLetters",
        "WriteDeadLetters/ToPubsubMessage",
        "RefreshProjects/Latest",
    } <= compared | {name.rsplit("/ParDo(", 1)[0] for name in compared}
    assert {name for name in steps if "/" not in name} == OUR_STEPS
