"""The local runner's per-bundle costs and counters: patches of Beam's DirectRunner for what it does for every
bundle of every step.

* **Metrics** (``bundle_metrics``). Each of the runner's worker threads keeps one state sampler, and the
  sampler caches a step's execution state, with the metrics container of the *first* bundle it ran, under the
  step's name. Every later bundle of that step on that thread increments the first bundle's container, which
  was already committed, so its counters are lost (all counters of timer callbacks of a stateful DoFn, for
  example). We give every bundle a fresh sampler, so each bundle reports into its own container.
* **DoFn introspection** (``dofn_specs``). For every bundle the runner looks for the state and timer
  declarations of the DoFn by inspecting the signature of each of its methods, several times. The
  declarations belong to the DoFn's class, so they are looked up once per class.
* **Bundle setup** (``dofn_copies``, ``function_signatures``, ``option_views``). For every bundle of a ParDo
  the runner pickles its DoFn and unpickles the result (a fresh copy), inspects the signature of each of its
  methods again, and every bundle of the Pub/Sub reader parses all the pipeline's options to find the
  project. We pickle each DoFn once and unpickle that pickle for every bundle (the same fresh copy), keep the
  signatures by function, and make each options view once (views share the options' values).
* **State copies** (``state_copies``). A bundle of a stateful step works on a copy of each key's state, and
  Beam copies the key's timers with ``deepcopy``; they are immutable values in two levels of dicts, so we
  copy the dicts.
"""

from __future__ import annotations

import threading

from transforms.private_api import Replacement


def install_bundle_metrics() -> list[Replacement]:
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


def install_dofn_specs() -> list[Replacement]:
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


def install_dofn_copies() -> list[Replacement]:
    """The DoFn's copy for the bundle (``_ParDoEvaluator.start_bundle`` calls ``pickler.roundtrip``)."""
    from apache_beam.runners.direct import transform_evaluator

    return [(transform_evaluator, "pickler", _DoFnCopies(transform_evaluator.pickler))]


def install_function_signatures() -> list[Replacement]:
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


def install_option_views() -> list[Replacement]:
    """The Pub/Sub reader's evaluator (one per read bundle) views the pipeline options to find the project,
    which parses every option declared anywhere: views are cached on the options it sees."""
    from apache_beam.runners.direct import transform_evaluator

    evaluator = transform_evaluator._PubSubReadEvaluator
    original_init = evaluator.__init__

    def __init__(self, evaluation_context, *args, **kwargs):
        options = getattr(evaluation_context, "pipeline_options", None)
        if options is not None and "view_as" not in vars(options):
            object.__setattr__(options, "view_as", cached_views(options.view_as))
        original_init(self, evaluation_context, *args, **kwargs)

    __init__.__wrapped__ = original_init
    return [(evaluator, "__init__", __init__)]


def cached_views(view_as):
    """``view_as`` of one options object, each class's view made once (views share the options' values)."""
    views: dict[type, object] = {}

    def cached(cls):
        view = views.get(cls)
        if view is None:
            view = views[cls] = view_as(cls)
        return view

    return cached


def install_state_copies() -> list[Replacement]:
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
