"""Make Beam's local streaming runner (the BundleBasedDirectRunner) usable for this pipeline.

``LocalRun`` watches a running local pipeline for failure, and stops it: ``drain`` (stop reading, apply every
key's buffer) then ``cancel`` (commit what was handed over, save the key states that were due). The patches
below are applied by ``prepare_direct_runner`` before a local streaming pipeline starts; they affect only the
DirectRunner in this process (Dataflow has its own reader, metrics and DoFn invokers).

Every patch is checked before it is applied (``PATCHES``: what it replaces, wraps, reimplements or relies on
in Beam, with the SHA-256 of that source on the Beam versions we tested, and the attributes it reads). A
patch whose check fails on the installed Beam is not applied: Beam's own code runs (slower, or with the
defect the patch fixes), and one WARNING names the patch and what changed; ``python -m pipeline.local_runner``
prints every check. ``prepare_direct_runner(patches=False)`` (``pipeline.stream --no_local_runner_patches``)
applies none and removes those applied before in the process: the pipeline then runs on Beam's runner as it
is. What works differently without a patch is said where it matters (``LocalRun.drain``, ``cancel``,
``reading_since``).

* **Pub/Sub pulls.** Beam's DirectRunner reads Pub/Sub with one synchronous pull of at most 10 messages that
  waits up to 30 s on an idle subscription, on the same thread as everything else: about 120 messages/s at
  best, and timers and the watermark stall while it waits. We wrap the reader's subscriber client so every
  pull asks for ``max_messages`` and returns after ``timeout`` seconds, and read the pulled messages from
  the response's protobuf instead of its proto-plus wrappers (same results; the whole process's CPU per
  message went from 508 to 450 µs, mean of two A/B runs of ``bench.stream`` over 100,000 messages). The
  emulator returns at most 100 messages a pull, and each pull is one read bundle: a full pull is followed by
  more, merged into one read of up to ``max_messages`` (per-bundle costs paid per 2,000 messages instead of
  100: 2,069 and 1,965 -> 2,604 and 2,623 msg/s in A/B runs over 100,000 messages). While pulls bring
  messages, the next three reads are started in the background, one after the other on one thread
  (``PULLS_AHEAD``), and acknowledgements are sent in the background (``ACKNOWLEDGEMENTS``): in a wall-time
  profile of ``bench.stream`` the runner's thread had spent 13% of its time waiting for those two calls.
  The reader's client is ours (``transforms.clients.new_pubsub_client``): on the emulator Beam's had gRPC's
  4 MiB limit on a response, so a pull of one 5 MB message, or of 100 of 60 KB, failed whole and nothing was
  read. A read also stops at about ``max_bytes`` (``--pubsub_pull_max_bytes``), and once the size of the
  messages is known each pull asks for as many as that holds: a backlog of large messages is read in reads
  of about that size, not of 2,000 messages (the first pull of a read can still bring what Pub/Sub gives one
  pull: at most 100 messages on the emulator).
* **Metrics.** Each of the runner's worker threads keeps one state sampler, and the sampler caches a step's
  execution state, with the metrics container of the *first* bundle it ran, under the step's name. Every later
  bundle of that step on that thread increments the first bundle's container, which was already committed, so
  its counters are lost (all counters of timer callbacks of a stateful DoFn, for example). We give every bundle
  a fresh sampler, so each bundle reports into its own container.
* **Timer scans.** Whenever it looks for timers to fire (all the time), the runner visits every key that
  ever had state in a stateful step and compares each of its timers with the watermark and the clock through
  ``Timestamp`` objects, building a new ``Timestamp`` from the clock for every key and every comparison: more
  than half of the CPU time of a streaming run over 2,000 keys, and growing with the number of keys (over
  20,000 keys, scans this slow delayed timers enough for a p99 latency of 115 s). We index each
  step's keys by their earliest timer (the runner changes a key's timers only by replacing its state, which
  we see) and visit only the keys with a timer due, comparing integer microseconds: the same firings in the
  same order. In pipelines that read Pub/Sub (where timers depend on the wall clock anyway) scans are at
  least ``TIMER_SCAN_INTERVAL`` (0.5 s) apart, so the timers due in that time fire in one bundle (one commit),
  and a timer fires at most that much later. (TestStream pipelines scan after every bundle, as Beam does.)
* **State copies.** A bundle of a stateful step works on a copy of each key's state, and Beam copies the
  key's timers with ``deepcopy``; they are immutable values in two levels of dicts, so we copy the dicts.
* **DoFn introspection.** For every bundle the runner looks for the state and timer declarations of the
  DoFn by inspecting the signature of each of its methods, several times: a third of the CPU time of a
  streaming run went there. The declarations belong to the DoFn's class, so they are looked up once per
  class.
* **Bundle setup** (three patches: DoFn copies, method signatures, options views). For every bundle of a
  ParDo the runner pickles its DoFn and unpickles the result (a fresh copy: 230 µs for the ingest step's),
  inspects the signature of each of its methods again, and every bundle of the Pub/Sub reader parses all the
  pipeline's options to find the project (110-200 µs). We pickle each DoFn once and unpickle that pickle for
  every bundle (the same fresh copy), keep the signatures by function, and make each options view once
  (views share the options' values). In a CPU profile of ``bench.stream`` over 100,000 messages these three
  took 11.8% of the runner thread's samples; 2.5% after.

``prepare_direct_runner`` also sets the garbage collector as the pipeline's workers have it
(``transforms.runtime``), and Python's thread switch interval to ``SWITCH_INTERVAL`` (1 ms instead of 5 ms).
The runner's thread waits on sockets (the creation quota's Redis round trips, a commit handed over) while the
commit, pull and acknowledgement threads run Python; when its answer comes it must wait for the thread that
holds the GIL to give it up, up to a whole interval. Full-size ``bench.stream`` runs (200,000 messages, pipeline
only) alternating 5 ms and 1 ms: 2,689 / 2,814 vs 2,840 / 2,982 msg/s; 100,000 messages: 3,455 / 3,435 vs
3,627 / 3,612 (0.2 ms was no better than 1 ms: 3,160 / 3,405 vs 3,342 / 3,349).

* **Drain** (``_install_drain``). While ``LocalRun.drain`` runs, the Pub/Sub read returns nothing and schedules
  no next read, with no watermark hold: the source ends and the watermark goes to the end, so every key's
  flush timer fires, as in a Dataflow drain. Beam's monitor would then end the pipeline at once, dropping the
  processing-time timers (flushes of keys whose hold runs), so it may not while draining; it notes instead
  when the runner has no work left, which with empty key buffers ends the drain.

Like Beam's own local reader, the reader acknowledges messages as soon as it pulls them: a local pipeline that
dies loses what it had in flight (Dataflow acknowledges only after its checkpoint). A pipeline stopped with
``LocalRun.drain`` and ``cancel`` applies what it pulled, sends its acknowledgements and gives back what it
pulled ahead and did not take.
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
import time
from collections.abc import Iterable

from transforms.private_api import Patch, Patcher, Replacement, Target
from transforms.runtime import tune_garbage_collector

_LOG = logging.getLogger(__name__)

_lock = threading.Lock()
_pull: dict[str, float] = {}

# Pub/Sub pipelines: the least time between two scans for due timers. Every scan that finds due timers of a
# step runs them as one bundle, and each bundle of the stateful step ends with one Spanner commit: scanning
# continuously made bundles of a few keys (0.02 commits per message); this batches them.
TIMER_SCAN_INTERVAL = 0.5

# Python's thread switch interval in local runs (see the module docstring); Python's default is 5 ms.
SWITCH_INTERVAL = 0.001


class _Acknowledgements:
    """The local reader's acknowledgements, sent on a thread of their own, in order, at most ``backlog``
    requests behind (the reader then waits). One that fails is logged: its messages come back after their
    ack deadline and are applied as the duplicates they are. ``LocalRun.cancel`` waits for them."""

    def __init__(self, backlog: int = 4) -> None:
        self._backlog = backlog
        self._lock = threading.Lock()
        self._pool = None
        self._pending: list = []

    def send(self, client, request, kwargs) -> None:
        from concurrent.futures import ThreadPoolExecutor

        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pubsub-ack")
            self._pending = [future for future in self._pending if not future.done()]
            oldest = self._pending[0] if len(self._pending) >= self._backlog else None
            self._pending.append(self._pool.submit(self._acknowledge, client, request, kwargs))
        if oldest is not None:
            oldest.result()

    @staticmethod
    def _acknowledge(client, request, kwargs) -> None:
        try:
            client.acknowledge(request=request, **kwargs)
        except Exception as error:  # redelivered later: duplicates, counted and applied once
            _LOG.warning(
                "acknowledging %d pulled messages failed (%s): they will come back",
                len(request.ack_ids),
                error,
            )

    def wait(self, timeout: float | None = 30.0) -> int:
        """Wait for the acknowledgements sent so far; returns how many requests are still unsent."""
        from concurrent.futures import wait

        with self._lock:
            pending = list(self._pending)
        return len(wait(pending, timeout).not_done) if pending else 0


ACKNOWLEDGEMENTS = _Acknowledgements()


class _PullsAhead:
    """The next reads of a subscription (``depth`` of them), started in the background as soon as a pull
    brought messages (a backlog), so that the runner's thread finds one done instead of waiting for the
    emulator or Pub/Sub (with one ahead, that thread still spent 5% of its time waiting for pulls in a local
    backlog). They run one after the other on one thread, in order. An empty pull starts none: an idle
    pipeline pulls as Beam's does. ``release`` (``LocalRun.cancel``) gives the messages of pulls nobody took
    back to the subscription at once (their lease ended), so a new pipeline gets them now rather than after
    their ack deadline."""

    def __init__(self, depth: int = 3) -> None:
        self.depth = depth
        self._lock = threading.Lock()
        self._pool = None
        self._ahead: dict = {}  # subscription -> (client, [future, ...]), oldest first

    def start(self, client, subscription: str, pull) -> None:
        """Start pulls (``pull()``) until ``depth`` are under way or done and not taken (none while the
        pipeline drains: it reads no more)."""
        from concurrent.futures import ThreadPoolExecutor

        if DRAINING.requested:
            return
        with self._lock:
            if self._pool is None:
                # One thread: the pulls run one after the other, so each read is a contiguous run of what the
                # subscription delivers, in order (concurrent pulls interleave their messages, and a key's
                # message that comes in a later read than a newer one is applied behind it: late).
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pubsub-pull-ahead")
            _client, futures = self._ahead.setdefault(subscription, (client, []))
            while len(futures) < self.depth:
                futures.append(self._pool.submit(pull))

    def take(self, subscription: str):
        """The oldest pull ahead of ``subscription`` (a future), or None."""
        with self._lock:
            entry = self._ahead.get(subscription)
            if entry is None:
                return None
            future = entry[1].pop(0)
            if not entry[1]:
                del self._ahead[subscription]
            return future

    def release(self, timeout: float = 30.0) -> int:
        """End the leases of the messages pulled ahead and not taken; returns how many."""
        with self._lock:
            entries, self._ahead = list(self._ahead.items()), {}
        released = 0
        for subscription, client, future in (
            (subscription, client, future)
            for subscription, (client, futures) in entries
            for future in futures
        ):
            try:
                received = type(future.result(timeout)).pb(future.result()).received_messages
                if received:
                    client.modify_ack_deadline(
                        subscription=subscription,
                        ack_ids=[pulled.ack_id for pulled in received],
                        ack_deadline_seconds=0,
                    )
                    released += len(received)
            except Exception as error:  # they come back after their ack deadline instead
                _LOG.warning("could not give back the messages pulled ahead on %s: %s", subscription, error)
        return released


PULLS_AHEAD = _PullsAhead()


class _FastPullClient:
    def __init__(self, client, max_messages: int, timeout: float, max_bytes: int = 32 << 20) -> None:
        self._client = client
        self._max_messages = max_messages
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._message_bytes = 0  # mean size of a message of the latest pull that brought some, as received

    def pull(self, subscription, max_messages=None, timeout=None, **kwargs):
        """``max_messages`` messages, waiting at most ``timeout`` seconds (Beam's arguments are ignored);
        while there is a backlog, the next pulls are already under way (``PULLS_AHEAD``)."""
        ahead = PULLS_AHEAD.take(subscription)
        response = ahead.result() if ahead is not None else self._pull(subscription, kwargs)
        if type(response).pb(response).received_messages:
            PULLS_AHEAD.start(self._client, subscription, lambda: self._pull(subscription, kwargs))
        return response

    def _pull(self, subscription, kwargs):
        """One pull; and while pulls come back full (a backlog), more pulls, merged into one read of up to
        ``max_messages`` messages and about ``max_bytes`` bytes. Each pull asks for as many messages as the
        bytes left hold at the size of the latest ones, so that a backlog of large messages is read in reads
        of about ``max_bytes`` rather than of ``max_messages`` (2,000 messages of 10 MB would be 20 GB)."""
        from google.pubsub_v1 import PullResponse

        first = merged = None
        count = size = 0
        while True:
            wanted = self._wanted(self._max_messages - count, self._max_bytes - size)
            response, received_bytes = self._pull_once(subscription, kwargs, wanted)
            received = PullResponse.pb(response).received_messages
            if received:
                self._message_bytes = max(received_bytes // len(received), 1)
            if first is None:
                first = response
            else:
                if merged is None:
                    merged = PullResponse.pb(first)
                merged.received_messages.extend(received)
            count += len(received)
            size += received_bytes
            if (
                len(received) < min(wanted, self.FULL_PULL)
                or count >= self._max_messages
                or size >= self._max_bytes
            ):
                return first if merged is None else PullResponse.wrap(merged)

    def _wanted(self, messages_left: int, bytes_left: int) -> int:
        if self._message_bytes:
            messages_left = min(messages_left, bytes_left // self._message_bytes)
        return max(messages_left, 1)

    # The Pub/Sub emulator returns at most 100 messages a pull, whatever is asked for; Pub/Sub itself may
    # return fewer than asked for too. Each read bundle of the runner is one pull: over a backlog, bundles of
    # 100 messages, and the pulls ahead (another thread) could not keep up with the runner's thread.
    FULL_PULL = 100

    def _pull_once(self, subscription, kwargs, max_messages: int):
        """One pull and its size in bytes as received."""
        from google.api_core import exceptions
        from google.pubsub_v1 import PullResponse

        from transforms import clients

        clients.forget_pull_bytes()
        try:
            response = self._client.pull(
                subscription=subscription, max_messages=max_messages, timeout=self._timeout, **kwargs
            )
        except exceptions.DeadlineExceeded:
            return PullResponse(), 0
        size = clients.last_pull_bytes()
        if size is None:  # a client not made by ``clients.new_pubsub_client``: the messages' bytes
            received = PullResponse.pb(response).received_messages
            size = sum(len(pulled.message.data) for pulled in received)
        return response, size

    def acknowledge(self, subscription, ack_ids, **kwargs):
        """Sent in the background (``ACKNOWLEDGEMENTS``), so the runner's thread goes on with the pulled
        messages; the request built as a protobuf (its proto-plus wrapper sets the ids one by one, slowly)."""
        from google.pubsub_v1 import AcknowledgeRequest

        request = AcknowledgeRequest.pb()(subscription=subscription, ack_ids=ack_ids)
        ACKNOWLEDGEMENTS.send(self._client, AcknowledgeRequest.wrap(request), kwargs)

    def __getattr__(self, name):
        return getattr(self._client, name)


@functools.cache
def _pulled_message_class():
    """``PubsubMessage`` whose ``publish_time`` (a ``DatetimeWithNanoseconds``) is made when first read: the
    pipeline uses the element's timestamp, and making it for every message took 3% of the runner's thread.
    Pickled, it is Beam's ``PubsubMessage``."""
    from apache_beam.io.gcp.pubsub import PubsubMessage
    from google.api_core.datetime_helpers import DatetimeWithNanoseconds
    from google.protobuf import timestamp_pb2

    class PulledMessage(PubsubMessage):
        def __init__(self, data, attributes, publish_pb: tuple[int, int] | None) -> None:
            super().__init__(data, attributes)  # checks the message as Beam does; sets publish_time to None
            if publish_pb is not None:
                del self.__dict__["_publish_time"]
                self._publish_pb = publish_pb  # (seconds, nanos)

        @property
        def publish_time(self):
            if "_publish_time" not in self.__dict__:
                seconds, nanos = self._publish_pb
                self._publish_time = DatetimeWithNanoseconds.from_timestamp_pb(
                    timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
                )
            return self._publish_time

        @publish_time.setter
        def publish_time(self, value) -> None:
            self._publish_time = value

        def __reduce__(self):
            fields = (self.data, self.attributes, self.message_id, self.publish_time, self.ordering_key)
            return PubsubMessage, fields

    return PulledMessage


def _read_from_pubsub(self, timestamp_attribute):
    """Beam's ``_PubSubReadEvaluator._read_from_pubsub``, reading the pulled messages from the response's
    protobuf rather than through its proto-plus wrappers: the same ``(Timestamp, PubsubMessage)`` pairs, the
    same errors (``PulledMessage`` makes its publish time only if it is read). While ``LocalRun.drain``
    runs it reads nothing."""
    from apache_beam.utils.timestamp import Timestamp

    if DRAINING.requested:  # no more reads (what stops reading in a drain without the drain patch)
        DRAINING.reader_stopped()
        return []
    pulled_message = _pulled_message_class()
    sub_client = self._get_subscriber_client(self._applied_ptransform)
    response = sub_client.pull(subscription=self._sub_name, max_messages=10, timeout=30)
    received = type(response).pb(response).received_messages
    results = []
    for pulled in received:
        message = pulled.message
        attributes = dict(message.attributes)
        has_publish_time = message.HasField("publish_time")
        publish_time = message.publish_time if has_publish_time else None
        parsed = pulled_message(
            message.data, attributes, (publish_time.seconds, publish_time.nanos) if has_publish_time else None
        )
        if message.message_id:
            parsed.message_id = message.message_id
        if message.ordering_key:
            parsed.ordering_key = message.ordering_key
        if timestamp_attribute and timestamp_attribute in attributes:
            rfc3339_or_milli = attributes[timestamp_attribute]
            try:
                timestamp = Timestamp(micros=int(rfc3339_or_milli) * 1000)
            except ValueError:
                try:
                    timestamp = Timestamp.from_rfc3339(rfc3339_or_milli)
                except ValueError as e:
                    raise ValueError(f"Bad timestamp value: {e}") from e
            if timestamp.precision() > Timestamp.MICROS_PRECISION:
                timestamp = timestamp.to_precision(Timestamp.MICROS_PRECISION, allow_lossy_conversion=True)
        else:
            if not has_publish_time:
                raise ValueError(f"No publish time present in message: {message}")
            timestamp = Timestamp(micros=publish_time.seconds * 1_000_000 + publish_time.nanos // 1000)
        results.append((timestamp, parsed))
    ack_ids = [pulled.ack_id for pulled in received]
    if ack_ids:
        sub_client.acknowledge(subscription=self._sub_name, ack_ids=ack_ids)
    return results


def _install_pubsub_pulls() -> list[Replacement]:
    from apache_beam.runners.direct import transform_evaluator

    evaluator = transform_evaluator._PubSubReadEvaluator
    original = evaluator._get_subscriber_client.__func__
    original_state = evaluator._get_subscriber_client_state_unlocked.__func__

    def _get_subscriber_client_state_unlocked(cls, transform):
        """Beam's, with our subscriber client: gRPC's 4 MiB limit on what a pull receives made a pull of
        more than 4 MiB fail whole, and nothing was read (``transforms.clients.new_pubsub_client``)."""
        import weakref

        from transforms import clients

        subscriber_client = cls._subscriber_client_cache.get(transform)
        if subscriber_client is None:
            subscriber_client = transform_evaluator._PubSubSubscriberClient(
                clients.new_pubsub_client("subscriber")
            )
            cls._subscriber_client_cache[transform] = subscriber_client
            weakref.finalize(transform, subscriber_client.close)
        return subscriber_client

    def _get_subscriber_client(cls, transform):
        client = original(cls, transform)
        return _FastPullClient(client, int(_pull["max_messages"]), _pull["timeout"], int(_pull["max_bytes"]))

    _get_subscriber_client_state_unlocked.__wrapped__ = original_state  # Beam's, for the tests
    _read_from_pubsub.__wrapped__ = evaluator._read_from_pubsub  # Beam's, for the tests
    return [
        (
            evaluator,
            "_get_subscriber_client_state_unlocked",
            classmethod(_get_subscriber_client_state_unlocked),
        ),
        (evaluator, "_get_subscriber_client", classmethod(_get_subscriber_client)),
        (evaluator, "_read_from_pubsub", _read_from_pubsub),
    ]


def _install_bundle_metrics() -> list[Replacement]:
    from apache_beam.runners.direct import executor
    from apache_beam.runners.worker import statesampler
    from apache_beam.utils import counters

    transform_executor = executor.TransformExecutor
    original = transform_executor.call

    def call(self, state_sampler):
        fresh = statesampler.StateSampler("", counters.CounterFactory())
        statesampler.set_current_tracker(fresh)
        try:
            return original(self, fresh)
        finally:
            statesampler.set_current_tracker(state_sampler)

    call.__wrapped__ = original
    return [(transform_executor, "call", call)]


def _install_dofn_specs() -> list[Replacement]:
    from apache_beam.runners.direct import transform_evaluator
    from apache_beam.transforms import userstate

    original = userstate.get_dofn_specs
    by_class: dict[type, tuple[frozenset, frozenset]] = {}

    def get_dofn_specs(dofn):
        specs = by_class.get(type(dofn))
        if specs is None:
            state_specs, timer_specs = original(dofn)
            specs = by_class[type(dofn)] = (frozenset(state_specs), frozenset(timer_specs))
        return set(specs[0]), set(specs[1])

    get_dofn_specs.__wrapped__ = original
    return [
        (userstate, "get_dofn_specs", get_dofn_specs),
        (transform_evaluator, "get_dofn_specs", get_dofn_specs),
    ]


class _DoFnCopies:
    """The ``pickler`` the runner's ParDo evaluator sees: ``roundtrip`` pickles each DoFn once and unpickles
    that for every bundle (Beam pickles it again for every bundle; the copy is the same: the DoFn a
    transform holds is not changed while the pipeline runs): Beam's cloudpickle ``roundtrip`` is
    ``_loads(_dumps(o))``. Other pickle libraries than cloudpickle, and objects that cannot be weakly
    referenced, go through Beam's ``roundtrip``."""

    def __init__(self, pickler) -> None:
        self._pickler = pickler
        self._pickled: dict[int, tuple[object, bytes]] = {}  # id -> (weak reference, pickle)
        self._lock = threading.Lock()

    def roundtrip(self, o):
        import weakref

        from apache_beam.internal import cloudpickle_pickler

        library = self._pickler.desired_pickle_lib
        if library is not cloudpickle_pickler:  # only cloudpickle's roundtrip is checked (DOFN_COPIES)
            return self._pickler.roundtrip(o)
        dumps, loads = library._dumps, library._loads
        with self._lock:
            entry = self._pickled.get(id(o))
        if entry is None or entry[0]() is not o:
            try:
                reference = weakref.ref(o)
            except TypeError:
                return self._pickler.roundtrip(o)
            entry = (reference, dumps(o))
            with self._lock:
                if len(self._pickled) >= 256:  # forget the DoFns of pipelines that are gone
                    self._pickled = {k: v for k, v in self._pickled.items() if v[0]() is not None}
                self._pickled[id(o)] = entry
        return loads(entry[1])

    def __getattr__(self, name):
        return getattr(self._pickler, name)


def _install_dofn_copies() -> list[Replacement]:
    """The DoFn's copy for the bundle (``_ParDoEvaluator.start_bundle`` calls ``pickler.roundtrip``)."""
    from apache_beam.runners.direct import transform_evaluator

    return [(transform_evaluator, "pickler", _DoFnCopies(transform_evaluator.pickler))]


def _install_function_signatures() -> list[Replacement]:
    """Method signatures (DoFnRunner's method wrappers): kept by function, and whether it is bound."""
    import inspect
    import types
    import weakref

    from apache_beam.transforms import core

    original_arguments = core.get_function_args_defaults
    by_function = (weakref.WeakKeyDictionary(), weakref.WeakKeyDictionary())  # unbound, bound

    def get_function_args_defaults(f):
        bound = inspect.ismethod(f)
        function = f.__func__ if bound else f
        if not isinstance(function, types.FunctionType):
            return original_arguments(f)
        cache = by_function[bound]
        found = cache.get(function)
        if found is None:
            args, defaults = original_arguments(f)
            found = cache[function] = (tuple(args), tuple(defaults))
        return list(found[0]), list(found[1])

    get_function_args_defaults.__wrapped__ = original_arguments  # Beam's, for the tests
    return [(core, "get_function_args_defaults", get_function_args_defaults)]


def _install_option_views() -> list[Replacement]:
    """The Pub/Sub reader's evaluator (one per read bundle) views the pipeline options to find the project,
    which parses every option declared anywhere: views are cached on the options it sees."""
    from apache_beam.runners.direct import transform_evaluator

    evaluator = transform_evaluator._PubSubReadEvaluator
    original_init = evaluator.__init__

    def __init__(self, evaluation_context, *args, **kwargs):
        options = getattr(evaluation_context, "pipeline_options", None)
        if options is not None and "view_as" not in vars(options):
            object.__setattr__(options, "view_as", _cached_views(options.view_as))
        original_init(self, evaluation_context, *args, **kwargs)

    __init__.__wrapped__ = original_init
    return [(evaluator, "__init__", __init__)]


def _cached_views(view_as):
    """``view_as`` of one options object, each class's view made once (views share the options' values)."""
    views: dict[type, object] = {}

    def cached(cls):
        view = views.get(cls)
        if view is None:
            view = views[cls] = view_as(cls)
        return view

    return cached


class _TimerIndex(dict):
    """One stateful step's keyed states (Beam's ``{encoded key: state}``), indexed by their earliest timers.

    The runner replaces a key's state only by assignment (a bundle works on a copy of the state and its result
    is committed with ``states[key] = copy``), so the assignments tell which keys' timers may have changed. A
    scan re-reads those keys, keeps a heap of each key's earliest timer per time domain, and visits only the
    keys whose earliest timer is due: the work of a scan follows the number of keys with due or changed
    timers, not the number of keys that ever had state.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__()
        self._changed_lock = threading.Lock()
        self._changed: set = set()
        self._ordinal: dict = {}  # key -> position in the dict's order (Beam's scan order)
        self._next_ordinal = 0
        self.earliest: dict = {}  # key -> (earliest real-time timer, earliest watermark timer), in micros
        self.heaps: tuple[list, list] = ([], [])  # (micros, ordinal, key), stale entries skipped
        self.real_time_keys = 0
        self.update(*args, **kwargs)

    def __setitem__(self, key, value) -> None:
        with self._changed_lock:
            if key not in self:
                self._ordinal[key] = self._next_ordinal
                self._next_ordinal += 1
            super().__setitem__(key, value)
            self._changed.add(key)

    def __delitem__(self, key) -> None:
        with self._changed_lock:
            super().__delitem__(key)
            del self._ordinal[key]
            self._changed.add(key)

    def update(self, *args, **kwargs) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def setdefault(self, key, default=None):
        if key not in self:
            self[key] = default
        return self[key]

    def pop(self, key, *default):
        if key not in self:
            if default:
                return default[0]
            raise KeyError(key)
        value = self[key]
        del self[key]
        return value

    def popitem(self):
        raise NotImplementedError("keyed states are not popped")

    def clear(self) -> None:
        for key in list(self):
            del self[key]

    def take_changed(self) -> set:
        with self._changed_lock:
            changed, self._changed = self._changed, set()
            return changed

    def ordinal(self, key) -> int:
        return self._ordinal[key]


def _install_timer_scans() -> list[Replacement]:
    import heapq

    from apache_beam.runners.direct import evaluation_context, watermark_manager
    from apache_beam.runners.direct.util import TimerFiring
    from apache_beam.transforms.timeutil import TimeDomain
    from apache_beam.utils.timestamp import Timestamp

    watermarks = watermark_manager._TransformWatermarks
    real_time, watermark_domain = TimeDomain.REAL_TIME, TimeDomain.WATERMARK

    def micros(value) -> int:
        return value.micros if type(value) is Timestamp else Timestamp.of(value).micros

    def due_firings(encoded_key, state, watermark, now, firings) -> None:
        """Beam's comparisons for one key: its timers due at ``watermark`` / ``now`` (micros)."""
        for window, timers in list(state.timers.items()):
            for (name, time_domain, tag), timestamp in list(timers.items()):
                if time_domain == real_time:
                    marker = now
                elif time_domain == watermark_domain:
                    marker = watermark
                else:
                    continue
                at = timestamp.micros if type(timestamp) is Timestamp else micros(timestamp)
                if at <= marker:
                    firings.append(
                        TimerFiring(encoded_key, window, name, time_domain, timestamp, dynamic_timer_tag=tag)
                    )

    def full_scan(self):
        """Beam's ``_TransformWatermarks.extract_transform_timers``, same result, one clock read."""
        fired_timers = []
        has_realtime_timer = False
        watermark = micros(self._input_watermark)
        now = None
        for encoded_key, state in self._keyed_states.items():
            if now is None and any(
                domain == real_time for timers in state.timers.values() for (_, domain, _) in timers
            ):
                has_realtime_timer = True
                now = micros(self._clock.time())
            due_firings(encoded_key, state, watermark, now, fired_timers)
        return fired_timers, has_realtime_timer

    def reindex(index: _TimerIndex) -> None:
        for key in index.take_changed():
            state = index.get(key)
            earliest = [None, None]
            if state is not None:
                for timers in state.timers.values():
                    for (_, domain, _), timestamp in timers.items():
                        slot = 0 if domain == real_time else 1 if domain == watermark_domain else None
                        if slot is not None:
                            at = timestamp.micros if type(timestamp) is Timestamp else micros(timestamp)
                            if earliest[slot] is None or at < earliest[slot]:
                                earliest[slot] = at
            before = index.earliest.pop(key, (None, None))
            index.real_time_keys += (earliest[0] is not None) - (before[0] is not None)
            if earliest[0] is None and earliest[1] is None:
                continue
            index.earliest[key] = earliest = tuple(earliest)
            for slot in (0, 1):
                if earliest[slot] is not None and earliest[slot] != before[slot]:
                    heapq.heappush(index.heaps[slot], (earliest[slot], index.ordinal(key), key))

    def indexed_scan(self, index: _TimerIndex):
        """The same firings as ``full_scan``, visiting only the keys whose earliest timer is due."""
        reindex(index)
        watermark = micros(self._input_watermark)
        now = micros(self._clock.time()) if index.real_time_keys else None
        due: dict = {}  # ordinal -> key
        for slot, marker in ((0, now), (1, watermark)):
            heap = index.heaps[slot]
            kept: dict = {}  # ordinal -> entry: one per key, pushed back (the timer stays set until the
            # bundle that fires it commits, and Beam finds it again until then)
            while heap and marker is not None and heap[0][0] <= marker:
                entry = heapq.heappop(heap)
                at, ordinal, key = entry
                earliest = index.earliest.get(key)
                if earliest is None or earliest[slot] != at or index.ordinal(key) != ordinal:
                    continue  # stale: the key's timers changed since
                kept[ordinal] = entry
                due[ordinal] = key
            for entry in kept.values():
                heapq.heappush(heap, entry)
        fired_timers = []
        for ordinal in sorted(due):
            key = due[ordinal]
            due_firings(key, index[key], watermark, now, fired_timers)
        return fired_timers, index.real_time_keys > 0

    def extract_transform_timers(self):
        """Beam's ``_TransformWatermarks.extract_transform_timers``: the same firings in the same order."""
        with self._lock:
            states = self._keyed_states
            found = indexed_scan(self, states) if isinstance(states, _TimerIndex) else full_scan(self)
            self._fired_timers.update(found[0])
            return found

    extract_transform_timers.__wrapped__ = watermarks.extract_transform_timers  # Beam's, for the tests

    context = evaluation_context.EvaluationContext
    initialize = context._initialize_keyed_states

    def _initialize_keyed_states(self, root_transforms, value_to_consumers):
        return {
            transform: _TimerIndex(states)
            for transform, states in initialize(self, root_transforms, value_to_consumers).items()
        }

    _initialize_keyed_states.__wrapped__ = initialize
    scan = context.extract_all_timers

    def reads_pubsub(self) -> bool:
        found = getattr(self, "_occurrence_pipeline_reads_pubsub", None)
        if found is None:
            found = any("ReadFromPubSub" in type(t.transform).__name__ for t in self._root_transforms)
            self._occurrence_pipeline_reads_pubsub = found
        return found

    def extract_all_timers(self):
        if not reads_pubsub(self):
            return scan(self)
        began = time.monotonic()
        if began < getattr(self, "_occurrence_pipeline_next_scan", 0.0):
            return [], True  # the caller (the runner's monitor) uses only the fired timers
        result = scan(self)
        ended = time.monotonic()
        self._occurrence_pipeline_next_scan = ended + max(4 * (ended - began), TIMER_SCAN_INTERVAL)
        return result

    extract_all_timers.__wrapped__ = scan
    return [
        (watermarks, "extract_transform_timers", extract_transform_timers),
        (context, "_initialize_keyed_states", _initialize_keyed_states),
        (context, "extract_all_timers", extract_all_timers),
    ]


def _install_state_copies() -> list[Replacement]:
    import collections
    import copy

    from apache_beam.transforms import trigger

    state_class = trigger.InMemoryUnmergedState

    def copy_state(self):
        """``InMemoryUnmergedState.copy`` without ``deepcopy`` of the timers: they map windows and
        (name, domain, tag) tuples to ``Timestamp``s, all immutable, so copying the two dict levels is the same
        copy (Beam deep-copies them for every key of every bundle of a stateful step)."""
        cloned = state_class(defensive_copy=self.defensive_copy)
        cloned.timers = collections.defaultdict(dict, {window: dict(t) for window, t in self.timers.items()})
        cloned.global_state = copy.deepcopy(self.global_state) if self.global_state else {}
        for window, tags in self.state.items():
            for tag, values in tags.items():
                cloned.state[window][tag] = copy.copy(values)
        return cloned

    copy_state.__wrapped__ = state_class.copy  # Beam's, for the tests
    return [(state_class, "copy", copy_state)]


class _Draining:
    """A local pipeline being drained (``LocalRun.drain``): the reader's next read returns nothing and ends
    the source, which moves the watermark to the end (``_install_drain``), and the runner's monitor notes when it
    finds no work at all (no bundle running or scheduled, no result waiting to be handed on). It also notes
    when the reader's first read returned (``LocalRun.reading_since``: a pipeline idle from its start)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requested = False
        self.reader_stopped_at: float | None = None  # monotonic
        self.quiet_at: float | None = None  # the latest monitor pass that found no work (monotonic)
        self.first_read_at: float | None = None  # when the reader's first read returned (monotonic)

    def reset(self) -> None:
        with self._lock:
            self.requested, self.reader_stopped_at, self.quiet_at = False, None, None
            self.first_read_at = None

    def start(self) -> None:
        with self._lock:
            self.requested = True

    def read_done(self) -> None:
        if self.first_read_at is None:
            with self._lock:
                self.first_read_at = time.monotonic()

    def reader_stopped(self) -> None:
        with self._lock:
            if self.reader_stopped_at is None:
                self.reader_stopped_at = time.monotonic()

    def observe(self, quiet: bool) -> None:
        with self._lock:
            self.quiet_at = time.monotonic() if quiet else None

    def quiet_since_reader_stopped(self) -> bool:
        """Whether the runner has had no work since a moment after the reader ended: everything it read has
        gone through every step (what is left is in key buffers, or in timers)."""
        with self._lock:
            return (
                self.reader_stopped_at is not None
                and self.quiet_at is not None
                and self.quiet_at > self.reader_stopped_at
            )


DRAINING = _Draining()


def _install_drain() -> list[Replacement]:
    from apache_beam.runners.direct import executor, transform_evaluator
    from apache_beam.runners.direct.util import TransformResult
    from apache_beam.utils.timestamp import MAX_TIMESTAMP

    evaluator = transform_evaluator._PubSubReadEvaluator
    read = evaluator.finish_bundle

    def finish_bundle(self):
        """Beam's read, or while draining: nothing read, no next read scheduled, and no watermark hold, so the
        source is done and the watermark goes to the end (as a Dataflow drain does)."""
        if not DRAINING.requested:
            result = read(self)
            DRAINING.read_done()
            return result
        DRAINING.reader_stopped()
        return TransformResult(self, [], [], None, {None: MAX_TIMESTAMP})

    finish_bundle.__wrapped__ = read

    monitor = executor._ExecutorServiceParallelExecutor._MonitorTask
    watch = monitor.call

    def call(self, state_sampler):
        """Beam's monitor pass; while draining it also notes whether the runner has any work left. The runner
        has one worker thread, which runs this pass too: nothing runs meanwhile."""
        watch(self, state_sampler)
        if DRAINING.requested:
            work = self._executor
            DRAINING.observe(
                not work.transform_executor_services.executors and work.all_updates._queue.empty()
            )

    call.__wrapped__ = watch
    should_shutdown = monitor._should_shutdown

    def _should_shutdown(self) -> bool:
        """Beam's, except while draining: ``cancel`` ends a drained pipeline. Beam would end it as soon as the
        watermark is at the end and no bundle runs, dropping the processing-time timers (the flushes of keys
        whose processing hold runs) and the event-time timers its check found due."""
        if DRAINING.requested:
            return False
        return should_shutdown(self)

    _should_shutdown.__wrapped__ = should_shutdown
    return [
        (evaluator, "finish_bundle", finish_bundle),
        (monitor, "call", call),
        (monitor, "_should_shutdown", _should_shutdown),
    ]


# What each patch replaces, wraps, reimplements or relies on in Beam, with the SHA-256 of its source
# (``inspect.getsource``) on Beam 2.77.0 and 2.78.0 (the same on both), and the attributes the patch reads
# there. ``python -m pipeline.local_runner`` prints the check of each on the installed Beam. A patch whose
# check fails is not applied: Beam's own code runs, and ``prepare_direct_runner`` logs why (one WARNING).
_TE = "apache_beam.runners.direct.transform_evaluator"
_EX = "apache_beam.runners.direct.executor"
_WM = "apache_beam.runners.direct.watermark_manager"
_EC = "apache_beam.runners.direct.evaluation_context"
_READER_INIT = Target(
    _TE,
    "_PubSubReadEvaluator.__init__",
    ("9b5ea2fec7506478ff059b5ba93a58d419b25de2c93ca5e62aa32cbc47fee46d",),
    "relies on",
    reads=("_PubSubReadEvaluator._sub_name", "_PubSubReadEvaluator._applied_ptransform"),
)
PATCHES: tuple[Patch, ...] = (
    Patch(
        "pubsub_pulls",
        "Pub/Sub pulls",
        "Beam's own Pub/Sub reader: a pull of at most 10 messages that waits up to 30 s, on the runner's "
        "thread, through a client that cannot receive more than 4 MiB a pull",
        (
            Target(
                _TE,
                "_PubSubReadEvaluator._read_from_pubsub",
                ("88f18895e47e8a7f4d3f3b6fcffa62b7a950af94190755d88ff711bc5e02e1b8",),
                "reimplements",
                reads=("_PubSubReadEvaluator._get_subscriber_client",),
            ),
            Target(
                _TE,
                "_PubSubReadEvaluator._get_subscriber_client",
                ("e6feeb415b2019297adb35f1dd20d7f9b2efbe55925810a4056167b7c7d92501",),
                "wraps",
            ),
            Target(
                _TE,
                "_PubSubReadEvaluator._get_subscriber_client_state_unlocked",
                ("ac65facba8e781cc8e8ebef33eaae6477459bd60609acfebea0cd081f650fa51",),
                "reimplements",
                reads=("_PubSubReadEvaluator._subscriber_client_cache",),
            ),
            Target(
                _TE,
                "_PubSubSubscriberClient",
                ("aeab311d70a472bcd018df1b189f15ad7874f5a755c52ecdeaa0a0c01df79cc3",),
                "relies on",
            ),
            _READER_INIT,
            Target(
                "apache_beam.io.gcp.pubsub",
                "PubsubMessage.__init__",
                ("accbef8c5bd60578585b1ae4ec2fcdda6704e742808401efba90631bc1edcc7d",),
                "relies on",  # PulledMessage
            ),
        ),
        _install_pubsub_pulls,
    ),
    Patch(
        "bundle_metrics",
        "bundle metrics",
        "Beam's state sampler per worker thread: the counters of a step's later bundles on a thread are lost "
        "(those of timer callbacks among them)",
        (
            Target(
                _EX,
                "TransformExecutor.call",
                ("0e12e5cc461d2f5d3d83dbc6043b34c7b301978f9faf2f444f3a857f88e153f9",),
                "wraps",
                reads=(
                    "apache_beam.runners.worker.statesampler:StateSampler",
                    "apache_beam.runners.worker.statesampler:set_current_tracker",
                    "apache_beam.utils.counters:CounterFactory",
                ),
            ),
        ),
        _install_bundle_metrics,
    ),
    Patch(
        "dofn_specs",
        "DoFn introspection",
        "Beam's inspection of every DoFn method's signature for every bundle",
        (
            Target(
                "apache_beam.transforms.userstate",
                "get_dofn_specs",
                ("eeb36145d3115aa02ec8d05667f4190084047c5229734d49250d6a950db0e923",),
                "wraps",
            ),
            Target(
                _TE,
                "_ParDoEvaluator.start_bundle",
                ("23c7e2f6f26f091dd2c51711a19deebae07f76c9032a110fce51ca552b3fd13e",),
                "relies on",  # calls the module's get_dofn_specs, which the patch replaces too
                reads=("get_dofn_specs",),
            ),
        ),
        _install_dofn_specs,
    ),
    Patch(
        "timer_scans",
        "timer scans",
        "Beam's own timer scans (every key that ever had state, at every scan: slower as keys accumulate)",
        (
            Target(
                _WM,
                "_TransformWatermarks.extract_transform_timers",
                ("897adb07f063798e1ca059d8103f3f984e033c924da449b52b034c12a480e102",),
                "reimplements",
            ),
            Target(
                _WM,
                "_TransformWatermarks.__init__",
                ("346c2388fc0881738a8d8da90c3d36fa700ffc53263029ab0f398ff7229ea3bd",),
                "relies on",
                reads=(
                    "_TransformWatermarks._lock",
                    "_TransformWatermarks._keyed_states",
                    "_TransformWatermarks._input_watermark",
                    "_TransformWatermarks._clock",
                    "_TransformWatermarks._fired_timers",
                ),
            ),
            Target(
                _EC,
                "EvaluationContext._initialize_keyed_states",
                ("2bd79425fff62c5100d7a63c720b0b47a267cdb23e50aaca0ac5e61008511903",),
                "wraps",
            ),
            Target(
                _EC,
                "EvaluationContext.extract_all_timers",
                ("3e979cee04b4fb4d2d682df300571a34635bf524b305e366fd81d9823bc759df",),
                "wraps",
            ),
            Target(
                _EC,
                "EvaluationContext.__init__",
                ("eff10da5f858f2c7ba36cbbec8322ba2175965382270b1579a58c445495be4ee",),
                "relies on",
                reads=("EvaluationContext._root_transforms",),
            ),
            # The index sees every change of a key's timers because the runner changes them only by assigning
            # the key a new state: when a bundle's states are committed, and for a key's first state.
            Target(
                _EC,
                "EvaluationContext.handle_result",
                ("5f8b5c3277610476bbe238066932c43e7b5286d85a40ca429ac80a442addba95",),
                "relies on",
            ),
            Target(
                _EC,
                "DirectStepContext.get_keyed_state",
                ("ec5a64913f5895226d956f38a4a0913b8cdcc03d8811d64c2ca5deb0548dc8d4",),
                "relies on",
            ),
            Target(
                "apache_beam.transforms.trigger",
                "InMemoryUnmergedState.set_timer",
                ("bb3432768223e14a3d8655a3e2cb943c41fffa1d9ffeef71c470691b365c93a2",),
                "relies on",  # how timers are kept: {window: {(name, domain, tag): timestamp}}
            ),
            Target(
                "apache_beam.runners.direct.util",
                "TimerFiring.__init__",
                ("b881e21a87e74bdfb3df819b0944450ae5cf5b9a95a4fffb024373e5f9c50706",),
                "relies on",
            ),
        ),
        _install_timer_scans,
    ),
    Patch(
        "state_copies",
        "state copies",
        "Beam's deepcopy of every key's timers for every bundle",
        (
            Target(
                "apache_beam.transforms.trigger",
                "InMemoryUnmergedState.copy",
                ("ee2487c6676bf0d0826d043954973486fa7e80f71f4c4276707b3a88eac1c94e",),
                "reimplements",
            ),
            Target(
                "apache_beam.transforms.trigger",
                "InMemoryUnmergedState.__init__",
                ("7616afbb137436ca1c3b5978c3d803f29c656c497e215b4872f38212e9d81071",),
                "relies on",
                reads=(
                    "InMemoryUnmergedState.timers",
                    "InMemoryUnmergedState.state",
                    "InMemoryUnmergedState.global_state",
                    "InMemoryUnmergedState.defensive_copy",
                ),
            ),
        ),
        _install_state_copies,
    ),
    Patch(
        "dofn_copies",
        "DoFn copies",
        "Beam's pickling of every DoFn again for every bundle",
        (
            Target(
                _TE,
                "_ParDoEvaluator.start_bundle",
                ("23c7e2f6f26f091dd2c51711a19deebae07f76c9032a110fce51ca552b3fd13e",),
                "relies on",  # calls pickler.roundtrip: the module attribute the patch replaces
                reads=("pickler",),
            ),
            Target(
                "apache_beam.internal.pickler",
                "roundtrip",
                ("8b1999c90c14457a2bc79bab2ed73e25760719abf7a54f19cd5d30fe45d7c857",),
                "reimplements",
                reads=("desired_pickle_lib",),
            ),
            Target(
                "apache_beam.internal.cloudpickle_pickler",
                "roundtrip",
                ("eb35b973c375cd1b9634442474337e3c24362775872fcac8975166053d6a9b9a",),
                "reimplements",
                reads=("_dumps", "_loads"),
            ),
        ),
        _install_dofn_copies,
    ),
    Patch(
        "function_signatures",
        "method signatures",
        "Beam's inspection of each DoFn method's signature for every bundle",
        (
            Target(
                "apache_beam.transforms.core",
                "get_function_args_defaults",
                ("5e41a60ff81fe8ca96ab6ec705dcd571f5c2f574a43a9e8db00010e19976191b",),
                "wraps",
            ),
        ),
        _install_function_signatures,
    ),
    Patch(
        "option_views",
        "options views",
        "Beam's parsing of every pipeline option for every Pub/Sub read",
        (_READER_INIT,),
        _install_option_views,
    ),
    Patch(
        "drain",
        "drain",
        "a drain that cannot stop Beam's reader (see LocalRun.drain)",
        (
            Target(
                _TE,
                "_PubSubReadEvaluator.finish_bundle",
                ("8f3f89b8ce538419a361d0dd1ed736d6c4dd345a501ff537d0201dbbfff65edb",),
                "wraps",
            ),
            Target(
                "apache_beam.runners.direct.util",
                "TransformResult.__init__",
                ("7535cbaf885eeb6e418e9b29b58d39992c5483ed2b6281deb8c610323ecb549a",),
                "relies on",
            ),
            Target(
                _EX,
                "_ExecutorServiceParallelExecutor._MonitorTask.call",
                ("1ee55554baa9987659fa4ad4072fc13a97e5af91591fe3359222d792ea2b3678",),
                "wraps",
                reads=("_ExecutorServiceParallelExecutor._MonitorTask._executor",),
            ),
            Target(
                _EX,
                "_ExecutorServiceParallelExecutor._MonitorTask._should_shutdown",
                ("d495932bcc1cbe61f38ed98990ba40c3515d6351e568ff4762b69c320dc02374",),
                "wraps",
            ),
            Target(
                _EX,
                "_ExecutorServiceParallelExecutor.__init__",
                ("8386440a396d12870991a479320ccc3e8aa6793a783f5d8aee5235bff7966c38",),
                "relies on",
                reads=(
                    "_ExecutorServiceParallelExecutor.transform_executor_services",
                    "_ExecutorServiceParallelExecutor.all_updates",
                ),
            ),
            Target(
                _EX,
                "_TransformExecutorServices.__init__",
                ("83b0c3b03854c69fe1928ba1f87c138756002b2552eec0ecd98e5a46dc295a25",),
                "relies on",
                reads=("_TransformExecutorServices.executors",),
            ),
            Target(
                _EX,
                "_ExecutorServiceParallelExecutor._TypedUpdateQueue",
                ("9d1406be6044a21072ec4ccefa6062f29341a27d9b2fdbc47e6272fe903668ba",),
                "relies on",
                reads=("_ExecutorServiceParallelExecutor._TypedUpdateQueue._queue",),
            ),
        ),
        _install_drain,
    ),
    Patch(
        "cancel_wakeup",
        "stop's wake-up of the runner's waiter",
        "Beam's cancel and a bounded wait (see LocalRun.cancel)",
        (
            Target(
                "apache_beam.runners.direct.direct_runner",
                "DirectPipelineResult.__init__",
                ("fd4d19fa85f800b472734b0aebb6b32e416164a153db2e903221f3f54a65719c",),
                "relies on",
                reads=("DirectPipelineResult._executor",),
            ),
            Target(
                "apache_beam.runners.direct.direct_runner",
                "DirectPipelineResult.cancel",
                ("27e522f01563eaadc922874f63e8aa5e13d596e02eeeb158b87fba19b9922c18",),
                "relies on",  # it does not tell the waiter; LocalRun.cancel does
            ),
            Target(
                _EX,
                "Executor",
                ("648081dabe41a439e5bdfd3867e6201f4916e8fbccabce44116238883596c25d",),
                "relies on",
                reads=("Executor._executor",),
            ),
            Target(
                _EX,
                "_ExecutorServiceParallelExecutor.__init__",
                ("8386440a396d12870991a479320ccc3e8aa6793a783f5d8aee5235bff7966c38",),
                "relies on",
                reads=("_ExecutorServiceParallelExecutor.visible_updates",),
            ),
            Target(
                _EX,
                "_ExecutorServiceParallelExecutor.await_completion",
                ("7c4cd90e775c554099b90e9cee216d61c7a233c864ca04859054fbdb0a6befbb",),
                "relies on",
            ),
            Target(
                _EX,
                "_ExecutorServiceParallelExecutor._VisibleExecutorUpdate",
                ("6490b1c0acaceeef04cb990bc1040e405366a4678cffaf9f2ac7d512d4e107c4",),
                "relies on",
            ),
            Target(
                _EX,
                "_ExecutorServiceParallelExecutor._TypedUpdateQueue",
                ("9d1406be6044a21072ec4ccefa6062f29341a27d9b2fdbc47e6272fe903668ba",),
                "relies on",
            ),
        ),
        None,  # LocalRun.cancel uses them directly, when they pass
    ),
)


def _beam_version() -> str:
    import apache_beam

    return f"Beam {apache_beam.__version__}"


PATCHER = Patcher(PATCHES, _LOG, "local runner", _beam_version)


def prepare_direct_runner(
    pull_max_messages: int = 2000,
    pull_timeout: float = 1.0,
    pull_max_bytes: int = 32 << 20,
    *,
    patches: bool | Iterable[str] = True,
) -> dict[str, str | None]:
    """Prepare this process for a local streaming pipeline: apply the patches (``patches``: True for all of
    them, False for none, or the names of those wanted) and remove the others, each only if Beam is still
    what it was written against (``PATCHES``); the pull settings of the latest call win. Returns, for every
    patch, None when it is in place, else why not. Process-wide; call it before the pipeline starts."""
    wanted = [patch.name for patch in PATCHES] if patches is True else [] if patches is False else patches
    with _lock:
        _pull["max_messages"] = pull_max_messages
        _pull["timeout"] = pull_timeout
        _pull["max_bytes"] = pull_max_bytes
        outcome = PATCHER.apply(wanted)
        DRAINING.reset()  # a new pipeline: not draining
        from transforms.apply_per_group import reset_draining

        reset_draining()
        tune_garbage_collector()
        sys.setswitchinterval(SWITCH_INTERVAL)
    if patches is False:
        _LOG.info("local runner: Beam's runner as it is, without our patches")
    return outcome


class LocalRun:
    """A streaming pipeline that runs in this process on the local runner, watched for failure.

    The local runner's ``PipelineResult`` stays RUNNING when the pipeline fails (a bundle that failed four
    times stops everything, and only ``wait_until_finish``, which otherwise never returns, raises it). A
    daemon thread waits on it here, so ``failure`` tells whether the pipeline died and why.
    """

    def __init__(self, result, dead_letter_sink=None) -> None:
        """``dead_letter_sink``: called with the dead letters made once the pipeline had stopped (keys whose
        write Spanner refused, settled by ``cancel``); without one they are logged."""
        self.result = result
        self.dead_letter_sink = dead_letter_sink
        self.failure: BaseException | None = None
        self._finished = threading.Event()
        self._started = time.monotonic()
        threading.Thread(target=self._watch, name="local-pipeline-watch", daemon=True).start()

    def _watch(self) -> None:
        try:
            self.result.wait_until_finish()
        except BaseException as error:  # the pipeline's own failure, reported by ``failure``
            self.failure = error
        finally:
            self._finished.set()

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    @property
    def reading_since(self) -> float | None:
        """When (monotonic) the reader's first read returned, even with nothing: the pipeline runs from then.
        Starting the runner can take a while on a busy machine (10-70 s here): an idle time counted from
        before would end a pipeline that never had the chance to read. Without the drain patch (which sees
        the reads) it is when this ``LocalRun`` was made, so the runner's start counts as idle time."""
        if not PATCHER.applied("drain"):
            return self._started
        return DRAINING.first_read_at

    def drain(self, timeout: float, abort: threading.Event | None = None) -> bool:
        """Stop reading, then apply every buffered message of every key, within ``timeout`` seconds (as a
        Dataflow drain does: the watermark goes to the end and every key's flush fires); returns whether
        everything was applied. Call ``cancel`` afterwards: it commits what the drain handed over, and saves
        the state of every key whose save was due (what is held on purpose: status changes waiting for their
        group, occurrences waiting for their event). ``abort`` (set, or a Ctrl-C) stops waiting at once.

        Messages the reader pulled are applied too: they reach their key's buffer before the runner has no
        work left. Pulls started ahead and not taken were not acknowledged: they go back to the subscription.
        Without the drain patch the drain is weaker (``_wait_quiet``).
        """
        from transforms.apply_per_group import buffered_messages, start_draining

        began = time.monotonic()
        _LOG.info(
            "draining: %s; applying what the key buffers hold (at most %.0fs)",
            "reading stopped"
            if PATCHER.applied("drain") or PATCHER.applied("pubsub_pulls")
            else "Beam's reader reads on",
            timeout,
        )
        start_draining()
        DRAINING.start()
        released = PULLS_AHEAD.release()
        try:
            if PATCHER.applied("drain"):
                outcome = self._wait_drained(began, timeout, abort)
            else:
                outcome = self._wait_quiet(began, timeout, abort)
        except KeyboardInterrupt:
            outcome = "aborted"
        self._drain = (outcome, time.monotonic() - began, released)
        if outcome != "drained" and outcome != "finished":
            buffered = buffered_messages()
            _LOG.error(
                "drain %s after %.1fs: %s; %d messages still in key buffers are lost (acknowledged when they "
                "were pulled)%s",
                "aborted" if outcome == "aborted" else "failed" if outcome == "failed" else "timed out",
                time.monotonic() - began,
                "reading had stopped"
                if DRAINING.reader_stopped_at is not None
                else "the reader had not stopped",
                buffered,
                ""
                if DRAINING.quiet_since_reader_stopped()
                else ", and more pulled messages were still on their way",
            )
        return outcome in ("drained", "finished")

    def _wait_drained(self, began: float, timeout: float, abort: threading.Event | None) -> str:
        """With the drain patch: until the reader has ended, the runner has had no work since, and the key
        buffers are empty."""
        from transforms.apply_per_group import buffered_messages

        while True:
            if self.finished:  # it ended by itself: every source done, every timer fired
                return "finished" if self.failure is None and buffered_messages() == 0 else "failed"
            if DRAINING.quiet_since_reader_stopped() and buffered_messages() == 0:
                return "drained"
            if abort is not None and abort.is_set():
                return "aborted"
            if time.monotonic() - began >= timeout:
                return "timeout"
            time.sleep(0.05)

    # Without the drain patch: how long the key buffers must stay empty, with nothing read or applied, for
    # a drain to be taken as done.
    QUIET_SECONDS = 2.0

    def _wait_quiet(self, began: float, timeout: float, abort: threading.Event | None) -> str:
        """Without the drain patch (Beam's runner cannot be told that the source ended, nor asked whether it
        has work): until the key buffers are empty and nothing was read or applied for ``QUIET_SECONDS``. Every
        key still applies what it buffered at its next flush (``start_draining``), and timers fire as the
        watermark (the clock, for Pub/Sub) moves on. With the Pub/Sub pulls patch the reader reads nothing
        more; with Beam's own reader it goes on pulling, and acknowledges what it pulls at once: messages it
        pulls in the moments before the stop can be lost, as Beam's local runner loses them on any stop."""
        from transforms import progress
        from transforms.apply_per_group import buffered_messages

        if not PATCHER.applied("pubsub_pulls"):
            _LOG.warning(
                "draining without our reader: Beam's reader goes on reading until the pipeline stops, and "
                "what it pulls in the moments before the stop is lost"
            )
        last, since = progress.snapshot(), time.monotonic()
        while True:
            if self.finished:
                return "finished" if self.failure is None and buffered_messages() == 0 else "failed"
            now, current = time.monotonic(), progress.snapshot()
            if current != last:
                last, since = current, now
            elif buffered_messages() == 0 and now - since >= self.QUIET_SECONDS:
                DRAINING.observe(True)
                return "drained"
            if abort is not None and abort.is_set():
                return "aborted"
            if now - began >= timeout:
                return "timeout"
            time.sleep(0.05)

    def cancel(self) -> None:
        """Stop the pipeline (after ``drain``; without it, what is in the key buffers is lost: the local reader
        acknowledged it), commit what it handed over and save the key states that were due, and log what a
        drain did."""
        from transforms.apply_per_group import drain_stats, saves_due, stopped_dead_letters, wait_for_commits

        if not self._finished.is_set():
            self.result.cancel()  # returns once the runner's threads are done
            if PATCHER.applied("cancel_wakeup"):
                from apache_beam.runners.direct.executor import _ExecutorServiceParallelExecutor

                # Wake the watch: the runner's cancel does not tell the waiter.
                self.result._executor._executor.visible_updates.offer(
                    _ExecutorServiceParallelExecutor._VisibleExecutorUpdate()
                )
                self._finished.wait(5.0)
            else:  # the watch's wait never returns: it stays blocked (a daemon thread); the pipeline has stopped
                self._finished.wait(1.0)
                self._finished.set()
        PULLS_AHEAD.release()  # pulled, never read: back to the subscription for the next pipeline
        ACKNOWLEDGEMENTS.wait()  # a new pipeline must not get what this one pulled (and applied) again
        due = saves_due()
        # What the stopped pipeline handed over is in Spanner before a new one reads it.
        running = wait_for_commits()
        late = stopped_dead_letters()
        if late:
            if self.dead_letter_sink is not None:
                self.dead_letter_sink(late)
            else:
                for dead_letter in late:
                    _LOG.error(
                        "dead letter %s (%s at %s): %s",
                        dead_letter.message_id,
                        dead_letter.reason,
                        dead_letter.stage,
                        dead_letter.error,
                    )
        drained = getattr(self, "_drain", None)
        if drained is not None:
            outcome, seconds, released = drained
            stats = drain_stats()
            _LOG.info(
                "drain %s in %.1fs: %d key flushes applied %d messages; %d key states saved by their timers and "
                "%d at the stop; %d messages pulled ahead given back to the subscription%s",
                "complete" if outcome in ("drained", "finished") else "incomplete",
                seconds,
                stats["keys flushed"],
                stats["messages applied"],
                stats["states saved"],
                due,
                released,
                f"; {running} commits still running after 60s" if running else "",
            )


def main() -> int:
    """``python -m pipeline.local_runner``: each patch's check on the installed Beam, target by target."""
    from transforms.private_api import source_sha256, target_problems

    print(f"{_beam_version()}: {len(PATCHES)} patches")
    failed = 0
    for patch in PATCHES:
        problems = PATCHER.problems(patch)
        failed += bool(problems)
        print(f"\n{patch.name} ({patch.title}): {'falls back' if problems else 'applies'}")
        for target in patch.targets:
            found = target_problems(target)
            try:
                digest = source_sha256(target)
            except Exception as error:  # missing, or no source: said by target_problems
                digest = f"({type(error).__name__})"
            print(f"  {'ok  ' if not found else 'FAIL'} {target.role:<12} {target.label}  sha256 {digest}")
            for problem in found:
                print(f"       {problem}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
