"""The local runner's patches and their checks: ``PATCHES`` (what each replaces, wraps, reimplements or relies
on in Beam, with the SHA-256 of that source on the Beam versions we tested, and the attributes it reads),
``PATCHER`` (applies and removes them, each only if its check passes on the installed Beam), and ``main``
(``python -m pipeline.local_runner``: every check, target by target).
"""

from __future__ import annotations

import logging

from pipeline.local_runner.bundles import (
    install_bundle_metrics,
    install_dofn_copies,
    install_dofn_specs,
    install_function_signatures,
    install_option_views,
    install_state_copies,
)
from pipeline.local_runner.drain_patch import install_drain
from pipeline.local_runner.reader import install_pubsub_pulls
from pipeline.local_runner.timers import install_timer_scans
from transforms.private_api import Patch, Patcher, Target

# The logger of the whole package (``pipeline.local_runner``).
LOG = logging.getLogger(__package__)

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
        install_pubsub_pulls,
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
        install_bundle_metrics,
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
        install_dofn_specs,
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
        install_timer_scans,
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
        install_state_copies,
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
        install_dofn_copies,
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
        install_function_signatures,
    ),
    Patch(
        "option_views",
        "options views",
        "Beam's parsing of every pipeline option for every Pub/Sub read",
        (_READER_INIT,),
        install_option_views,
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
        install_drain,
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


def beam_version() -> str:
    import apache_beam

    return f"Beam {apache_beam.__version__}"


PATCHER = Patcher(PATCHES, LOG, "local runner", beam_version)


def main() -> int:
    """``python -m pipeline.local_runner``: each patch's check on the installed Beam, target by target."""
    from transforms.private_api import source_sha256, target_problems

    print(f"{beam_version()}: {len(PATCHES)} patches")
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
