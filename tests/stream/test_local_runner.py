"""The local runner's patches (``pipeline.local_runner``) do what Beam's code they replace does: the timer scan
finds exactly what Beam's finds, the state copy, the Pub/Sub read, DoFn copies and method signatures."""

from __future__ import annotations

import pickle
import random
import sys

import pytest
from apache_beam.runners.direct import watermark_manager
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.trigger import InMemoryUnmergedState
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import Timestamp

from pipeline.local_runner import PATCHER, SWITCH_INTERVAL, prepare_direct_runner


def _patched(name: str) -> None:
    """Apply the patches; skip the test if patch ``name`` fell back on this Beam (``test_patch_checks`` fails
    then, naming it and why)."""
    prepare_direct_runner()
    if not PATCHER.applied(name):
        pytest.skip(f"the {name} patch is not applied on this Beam")


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


def _watermarks(keyed_states, clock, input_watermark):
    tw = watermark_manager._TransformWatermarks(clock, keyed_states, "ApplyEngine")
    tw._input_watermark = input_watermark
    return tw


def _firings(found):
    fired, has_real_time = found
    return [(f.encoded_key, f.window, f.name, f.time_domain, f.timestamp) for f in fired], has_real_time


def test_patched_timer_scan_fires_what_beams_fires():
    _patched("timer_scans")
    patched = watermark_manager._TransformWatermarks.extract_transform_timers
    beams = patched.__wrapped__
    rng = random.Random(7)
    window = GlobalWindow()
    for _ in range(50):
        states = {}
        for key in range(rng.randrange(0, 40)):
            states[f"key-{key}".encode()] = _random_state(rng, window, 0.6)
        clock = _Clock(rng.randrange(0, 2_000_000) / 1e6)
        watermark = Timestamp(micros=rng.randrange(0, 2_000_000))
        expected = _firings(beams(_watermarks(states, clock, watermark)))
        assert _firings(patched(_watermarks(states, clock, watermark))) == expected


def test_patched_timer_scan_reports_real_time_timers_that_have_not_fired():
    _patched("timer_scans")
    state = InMemoryUnmergedState()
    state.set_timer(GlobalWindow(), "expire", TimeDomain.REAL_TIME, Timestamp(seconds=100))
    tw = _watermarks({b"k": state}, _Clock(50.0), Timestamp(seconds=1))
    assert watermark_manager._TransformWatermarks.extract_transform_timers(tw) == ([], True)


def _random_state(rng: random.Random, window, share: float = 0.4) -> InMemoryUnmergedState:
    """A key's state with each of the stateful step's timers set with probability ``share``."""
    state = InMemoryUnmergedState()
    for name, domain in (
        ("hold_flush", TimeDomain.REAL_TIME),
        ("event_flush", TimeDomain.WATERMARK),
        ("expire", TimeDomain.REAL_TIME),
    ):
        if rng.random() < share:
            state.set_timer(window, name, domain, Timestamp(micros=rng.randrange(0, 2_000_000)))
    return state


def test_indexed_timer_scan_follows_every_change_of_the_keyed_states():
    """The runner's keyed states, indexed by earliest timer: after any sequence of states replaced, added and
    removed, a scan fires exactly what Beam's scan over the same states fires, in the same order."""
    from apache_beam.runners.direct import evaluation_context

    _patched("timer_scans")
    patched = watermark_manager._TransformWatermarks.extract_transform_timers
    beams = patched.__wrapped__
    window = GlobalWindow()
    rng = random.Random(11)
    context = evaluation_context.EvaluationContext.__new__(evaluation_context.EvaluationContext)
    fired = 0
    for _ in range(20):
        (states,) = evaluation_context.EvaluationContext._initialize_keyed_states(
            context, ["ApplyEngine"], {}
        ).values()
        assert type(states).__name__ == "_TimerIndex"
        clock = _Clock(0.0)
        watermark = 0
        for _ in range(300):
            roll = rng.random()
            key = f"key-{rng.randrange(0, 30)}".encode()
            if roll < 0.5:
                states[key] = _random_state(rng, window)  # a bundle's result committed
            elif roll < 0.55 and key in states:
                del states[key]
            elif roll < 0.6:
                states.setdefault(key, InMemoryUnmergedState())
            clock.now += rng.randrange(0, 40_000) / 1e6
            watermark += rng.randrange(0, 40_000)
            tw = _watermarks(states, clock, Timestamp(micros=watermark))
            expected = _firings(beams(tw))
            assert _firings(patched(tw)) == expected
            fired += len(expected[0])
    assert fired > 1000


def test_state_copy_is_beams_copy():
    _patched("state_copies")
    patched = InMemoryUnmergedState.copy
    beams = patched.__wrapped__
    rng = random.Random(5)
    window = GlobalWindow()
    from apache_beam.transforms.trigger import _ListStateTag

    tag = _ListStateTag("buffer")
    for _ in range(50):
        state = _random_state(rng, window)
        for value in range(rng.randrange(0, 4)):
            state.add_state(window, tag, str(value).encode())
        copied, expected = patched(state), beams(state)
        assert dict(copied.timers) == dict(expected.timers)
        assert {w: dict(t) for w, t in copied.state.items()} == {
            w: dict(t) for w, t in expected.state.items()
        }
        assert copied.global_state == expected.global_state
        copied.set_timer(window, "other", TimeDomain.WATERMARK, Timestamp(micros=1))
        copied.add_state(window, tag, b"more")
        assert "other" not in {name for timers in state.timers.values() for (name, _, _) in timers}
        assert b"more" not in state.get_state(window, tag)


class _FakeSubscriber:
    """Returns one prepared pull response; records acknowledgements."""

    def __init__(self, response) -> None:
        self.response = response
        self.acked: list[list[str]] = []

    def pull(self, subscription, max_messages=None, timeout=None, **kwargs):
        return self.response

    def acknowledge(self, subscription, ack_ids, **kwargs) -> None:
        self.acked.append(list(ack_ids))


class _FakeEvaluator:
    def __init__(self, client) -> None:
        self._client = client
        self._applied_ptransform = None
        self._sub_name = "projects/p/subscriptions/s"

    def _get_subscriber_client(self, transform):
        return self._client


def _pull_response(attribute_values):
    from google.protobuf import timestamp_pb2
    from google.pubsub_v1 import PubsubMessage as Message
    from google.pubsub_v1 import PullResponse, ReceivedMessage

    received = []
    for index, value in enumerate(attribute_values):
        attributes = {"kind": "occurrence"} if value is None else {"kind": "x", "ts": value}
        message = Message(
            data=f"payload {index}".encode(),
            attributes=attributes,
            message_id=str(1000 + index),
            publish_time=timestamp_pb2.Timestamp(seconds=1_780_000_000 + index, nanos=123_456_789),
            ordering_key="k" if index % 2 else "",
        )
        received.append(ReceivedMessage(ack_id=f"ack-{index}", message=message))
    return PullResponse(received_messages=received)


def test_pubsub_read_gives_what_beams_gives() -> None:
    """The reader's messages and timestamps, with and without a timestamp attribute, and its errors."""

    from pipeline.local_runner import read_from_pubsub

    _patched("pubsub_pulls")
    beams = read_from_pubsub.__wrapped__
    values = [None, "1780000000123", "2026-05-01T10:00:00.123456789Z", "2026-05-01T10:00:00Z", None]
    for attribute in (None, "ts"):
        ours_client, beams_client = (
            _FakeSubscriber(_pull_response(values)),
            _FakeSubscriber(_pull_response(values)),
        )
        ours = read_from_pubsub(_FakeEvaluator(ours_client), attribute)
        theirs = beams(_FakeEvaluator(beams_client), attribute)
        assert ours == theirs
        assert [timestamp for timestamp, _ in ours] == [timestamp for timestamp, _ in theirs]
        assert [m.publish_time for _, m in ours] == [m.publish_time for _, m in theirs]
        assert [m.ordering_key for _, m in ours] == [m.ordering_key for _, m in theirs]
        for (_, mine), (_, beams_message) in zip(ours, theirs):  # pickled, a pulled message is Beam's
            copy = pickle.loads(pickle.dumps(mine))
            assert type(copy) is type(beams_message)
            assert vars(copy) == vars(beams_message)
        assert ours_client.acked == beams_client.acked == [[f"ack-{i}" for i in range(len(values))]]
    without = _pull_response(["1780000000123"])
    type(without).pb(without).received_messages[0].message.ClearField("publish_time")
    ours = read_from_pubsub(_FakeEvaluator(_FakeSubscriber(without)), "ts")
    theirs = beams(_FakeEvaluator(_FakeSubscriber(without)), "ts")
    assert ours == theirs and ours[0][1].publish_time is theirs[0][1].publish_time is None
    for bad in ("yesterday", ""):
        with pytest.raises(ValueError, match="Bad timestamp value") as ours_error:
            read_from_pubsub(_FakeEvaluator(_FakeSubscriber(_pull_response([bad]))), "ts")
        with pytest.raises(ValueError, match="Bad timestamp value") as theirs_error:
            beams(_FakeEvaluator(_FakeSubscriber(_pull_response([bad]))), "ts")
        assert str(ours_error.value) == str(theirs_error.value)


class _CountingDoFn:
    """Picklable; counts how often it is pickled (``__reduce__``)."""

    pickled = 0

    def __init__(self, value) -> None:
        self.value = value

    def __reduce__(self):
        type(self).pickled += 1
        return (type(self), (self.value,))


def test_dofn_copies_are_fresh_unpickled_copies_of_one_pickle() -> None:
    from apache_beam.internal import pickler
    from apache_beam.runners.direct import transform_evaluator

    _patched("dofn_copies")
    copies = transform_evaluator.pickler
    assert copies is not pickler and copies.dumps is pickler.dumps  # the rest is Beam's pickler
    dofn = _CountingDoFn({"config": [1, 2]})
    _CountingDoFn.pickled = 0
    first, second = copies.roundtrip(dofn), copies.roundtrip(dofn)
    assert _CountingDoFn.pickled == 1  # pickled once ...
    assert first is not second and first is not dofn and first.value is not second.value  # ... fresh copies
    assert first.value == second.value == pickler.roundtrip(dofn).value
    other = _CountingDoFn({"config": [3]})  # another DoFn has its own pickle
    assert copies.roundtrip(other).value == {"config": [3]}
    del other
    assert copies.roundtrip(_CountingDoFn("new")).value == "new"  # an id used again is not mistaken
    assert copies.roundtrip(("no", "weak", "reference")) == ("no", "weak", "reference")  # Beam's roundtrip


def test_function_arguments_are_beams() -> None:
    import functools

    import apache_beam as beam
    from apache_beam.transforms import core

    _patched("function_signatures")
    patched = core.get_function_args_defaults
    beams = patched.__wrapped__

    from apache_beam.transforms.userstate import ReadModifyWriteStateSpec

    class Fn(beam.DoFn):
        SPEC = ReadModifyWriteStateSpec("spec", beam.coders.BytesCoder())

        def process(self, element, side=3, state=beam.DoFn.StateParam(SPEC), *args, **kwargs):
            yield element

        @classmethod
        def make(cls, a, b=1):
            return cls()

    def plain(a, b=2, *, c=3):
        return a

    candidates = [Fn().process, Fn().process, Fn.process, Fn.make, plain, functools.partial(plain, 1), len]
    for candidate in candidates * 2:  # the second time from the cache
        try:
            expected = beams(candidate)
        except (TypeError, ValueError) as error:
            with pytest.raises(type(error)):
                patched(candidate)
            continue
        got = patched(candidate)
        assert got == expected
        got[0].append("changed")  # callers get their own lists
        assert patched(candidate) == expected


def test_cached_option_views_share_the_options_values() -> None:
    from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions, StandardOptions

    from pipeline.local_runner import cached_views

    options = PipelineOptions(["--project=first", "--streaming"])
    view_as = cached_views(options.view_as)
    cloud = view_as(GoogleCloudOptions)
    assert view_as(GoogleCloudOptions) is cloud and cloud.project == "first"
    options.view_as(GoogleCloudOptions).project = "second"  # a change made through another view ...
    assert cloud.project == "second"  # ... is seen by the cached one
    assert view_as(StandardOptions).streaming is True


def test_local_runs_switch_threads_every_millisecond():
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    try:
        prepare_direct_runner()
        assert SWITCH_INTERVAL == 0.001
        assert sys.getswitchinterval() == SWITCH_INTERVAL
    finally:
        sys.setswitchinterval(before)
