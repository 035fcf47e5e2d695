"""The project registry as a side input: read from Spanner, refreshed periodically in streaming.

``RefreshRegistry`` is a source of ``RegistrySnapshot``s, read from the Projects table every ``interval``
seconds (processing time). On Dataflow it is driven by Beam's ``PeriodicImpulse``, which stops when the job
is drained (a looping processing-time timer would keep a draining job alive forever) and emits a snapshot at
every tick. Beam's ``PeriodicImpulse`` does not run on the local streaming runner, so there a stateful
"ticker" with a looping timer reads the table and emits a snapshot only when the registry changed.
``AsRegistry`` turns either PCollection into a side input whose value is a ``Mapping[int, ProjectInfo]`` of
the newest snapshot (the local runner keeps every pane of a global-window side input, so consumers pick the
newest version themselves).

Before the first snapshot reaches a worker, the view reads the registry directly (and caches it for the
refresh interval), so the first messages of a new pipeline are not taken for unknown projects.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Mapping

import apache_beam as beam
import msgspec
from apache_beam import pvalue
from apache_beam.coders import BytesCoder
from apache_beam.portability import common_urns
from apache_beam.transforms import trigger, window
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer
from apache_beam.utils.timestamp import Timestamp

from transforms.applier import SpannerTarget
from transforms.core.model import ProjectInfo
from transforms.storage import registry


class RegistrySnapshot(msgspec.Struct, frozen=True):
    version: float  # processing time of the read
    projects: dict[int, ProjectInfo]


def read_snapshot(target: SpannerTarget) -> RegistrySnapshot:
    return RegistrySnapshot(time.time(), registry.read_projects(target.database_handle()))


class RegistryView(Mapping[int, ProjectInfo]):
    """A read-only mapping project id -> ``ProjectInfo``.

    ``in`` and ``get``, which the ingest steps call once a message each (``CheckProjectFn``, ``AttachProject``),
    go straight to the mapping it wraps: ``Mapping``'s own go through ``__getitem__`` (and an exception for a
    missing id), two Python calls each."""

    def __init__(self, projects: Mapping[int, ProjectInfo]) -> None:
        self._projects = projects
        self.get = projects.get  # type: ignore[method-assign]  # the wrapped mapping's own (a dict's: C)

    def __getitem__(self, project_id: int) -> ProjectInfo:
        return self._projects[project_id]

    def __contains__(self, project_id: object) -> bool:
        return project_id in self._projects

    def __iter__(self) -> Iterator[int]:
        return iter(self._projects)

    def __len__(self) -> int:
        return len(self._projects)

    def __reduce__(self) -> tuple[type[RegistryView], tuple[Mapping[int, ProjectInfo]]]:
        # Made again from the mapping, so that a copy's ``get`` is its own mapping's (a deep copy would keep
        # the bound ``get`` of the original's: a builtin method is copied as it is).
        return RegistryView, (self._projects,)


_direct_lock = threading.Lock()
_direct_cache: dict[SpannerTarget, tuple[float, dict[int, ProjectInfo]]] = {}


def _direct_read(target: SpannerTarget, ttl: float) -> dict[int, ProjectInfo]:
    now = time.monotonic()
    with _direct_lock:
        cached = _direct_cache.get(target)
        if cached is not None and now - cached[0] < ttl:
            return cached[1]
    projects = registry.read_projects(target.database_handle())
    with _direct_lock:
        _direct_cache[target] = (now, projects)
    return projects


class _LatestView:
    """The side input's view function: the newest snapshot, or a direct read before the first one."""

    def __init__(self, target: SpannerTarget, ttl: float) -> None:
        self._target = target
        self._ttl = ttl

    def __call__(self, snapshots: Iterable[RegistrySnapshot]) -> RegistryView:
        newest = None
        for snapshot in snapshots:
            if newest is None or snapshot.version > newest.version:
                newest = snapshot
        if newest is None:
            return RegistryView(_direct_read(self._target, self._ttl))
        return RegistryView(newest.projects)


class AsRegistry(pvalue.AsSideInput):
    """Side input view of a ``RegistrySnapshot`` PCollection: the newest registry as a mapping.

    Beam has no public way to give a side input a view of its own: this uses the hook Beam's own views
    (``AsIter``, ``AsDict``...) define, ``_side_input_data``, which ``to_runner_api`` serialises for every
    runner. ``check_view_hook`` makes sure Beam still does, once per process."""

    def __init__(self, pcoll: beam.PCollection, target: SpannerTarget, refresh_seconds: float = 60.0) -> None:
        super().__init__(pcoll)
        self._view = _LatestView(target, refresh_seconds)
        check_view_hook(self)

    def _side_input_data(self):
        return pvalue.SideInputData(common_urns.side_inputs.ITERABLE.urn, self._window_mapping_fn, self._view)


_view_hook_checked = threading.Event()


def check_view_hook(side_input: AsRegistry) -> None:
    """Serialise ``side_input`` as a pipeline does, once per process: Beam must carry our view function to the
    runner, with the iterable access pattern. If it does not (a Beam that changed how a side input's view is
    made), the pipeline refuses to build, naming the cause: a view that silently did not apply would make
    every message's project unknown. ``RuntimeError`` then."""
    if _view_hook_checked.is_set():
        return
    from apache_beam.internal import pickler
    from apache_beam.runners.pipeline_context import PipelineContext

    try:
        proto = side_input.to_runner_api(PipelineContext())
        view = pickler.loads(proto.view_fn.payload)
        access = proto.access_pattern.urn
    except Exception as error:
        raise RuntimeError(
            f"the project registry's side input cannot be built on this Beam: {error}"
        ) from error
    if access != common_urns.side_inputs.ITERABLE.urn or not isinstance(view, _LatestView):
        raise RuntimeError(
            "the project registry's side input cannot be built on this Beam: AsSideInput.to_runner_api no "
            f"longer takes the view from _side_input_data (got {type(view).__name__}, access {access})"
        )
    _view_hook_checked.set()


class _Ticker(beam.DoFn):
    """Reads the registry every ``interval`` seconds; emits a snapshot when it differs from the last one."""

    TICK = TimerSpec("tick", TimeDomain.REAL_TIME)
    LAST = ReadModifyWriteStateSpec("last", BytesCoder())

    def __init__(self, target: SpannerTarget, interval: float) -> None:
        self._target = target
        self._interval = interval

    def process(self, element, tick=beam.DoFn.TimerParam(TICK)):  # no "-> None": see ApplyPerGroupFn.process
        tick.set(Timestamp.of(time.time()))

    @on_timer(TICK)
    def on_tick(self, tick=beam.DoFn.TimerParam(TICK), last=beam.DoFn.StateParam(LAST)):
        tick.set(Timestamp.of(time.time() + self._interval))
        snapshot = read_snapshot(self._target)
        fingerprint = msgspec.msgpack.encode(sorted(snapshot.projects.items()))
        if fingerprint != last.read():
            last.write(fingerprint)
            yield snapshot


class _ReadSnapshot(beam.DoFn):
    def __init__(self, target: SpannerTarget) -> None:
        self._target = target

    def process(self, unused_tick) -> Iterator[RegistrySnapshot]:
        yield read_snapshot(self._target)


class RefreshRegistry(beam.PTransform):
    """A streaming source of registry snapshots (see the module docstring).

    ``periodic_impulse``: drive the reads with Beam's ``PeriodicImpulse`` (Dataflow: drains cleanly) instead
    of the ticker (the local runner, which cannot run ``PeriodicImpulse``).
    """

    def __init__(
        self,
        target: SpannerTarget,
        interval: float = 60.0,
        *,
        periodic_impulse: bool = False,
        label: str | None = None,
    ) -> None:
        super().__init__(label)
        self._target = target
        self._interval = interval
        self._periodic_impulse = periodic_impulse

    def expand(self, pbegin: pvalue.PBegin) -> beam.PCollection:
        if self._periodic_impulse:
            from apache_beam.transforms.periodicsequence import PeriodicImpulse, RebaseMode

            snapshots = (
                pbegin
                | "Tick" >> PeriodicImpulse(fire_interval=self._interval, rebase=RebaseMode.REBASE_START)
                | "ReadPeriodically" >> beam.ParDo(_ReadSnapshot(self._target))
            )
        else:
            snapshots = (
                pbegin
                | "Start" >> beam.Create([("registry", None)])
                | "ReadPeriodically" >> beam.ParDo(_Ticker(self._target, self._interval))
            )
        return snapshots | "Latest" >> beam.WindowInto(
            window.GlobalWindows(),
            trigger=trigger.Repeatedly(trigger.AfterCount(1)),
            accumulation_mode=trigger.AccumulationMode.DISCARDING,
        )


class ReadRegistryOnce(beam.PTransform):
    """A batch source of one registry snapshot (backfills)."""

    def __init__(self, target: SpannerTarget, label: str | None = None) -> None:
        super().__init__(label)
        self._target = target

    def expand(self, pbegin: pvalue.PBegin) -> beam.PCollection:
        target = self._target
        return pbegin | "Start" >> beam.Create([None]) | "Read" >> beam.Map(lambda _: read_snapshot(target))
