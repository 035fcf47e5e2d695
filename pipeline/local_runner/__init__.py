"""Make Beam's local streaming runner (the BundleBasedDirectRunner) usable for this pipeline.

``LocalRun`` watches a running local pipeline for failure, and stops it: ``drain`` (stop reading, apply every
key's buffer) then ``cancel`` (commit what was handed over, save the key states that were due). The patches
are applied by ``prepare_direct_runner`` before a local streaming pipeline starts; they affect only the
DirectRunner in this process (Dataflow has its own reader, metrics and DoFn invokers).

Every patch is checked before it is applied (``PATCHES``: what it replaces, wraps, reimplements or relies on
in Beam, with the SHA-256 of that source on the Beam versions we tested, and the attributes it reads). A
patch whose check fails on the installed Beam is not applied: Beam's own code runs (slower, or with the
defect the patch fixes), and one WARNING names the patch and what changed; ``python -m pipeline.local_runner``
prints every check. ``prepare_direct_runner(patches=False)`` (``pipeline.stream --no_local_runner_patches``)
applies none and removes those applied before in the process: the pipeline then runs on Beam's runner as it
is. What works differently without a patch is said where it matters (``LocalRun.drain``, ``cancel``,
``reading_since``).

One module per concern (each module's docstring says what its patches do and keep; what they save, as
measured, is in docs/runners.md, "What the patches save"):

* ``pulls`` and ``reader``: **Pub/Sub pulls** (``pubsub_pulls``). Large reads that return after a timeout,
  pulls ahead and acknowledgements in the background, and messages read from the response's protobuf.
* ``bundles``: **metrics**, **DoFn introspection**, **bundle setup** (DoFn copies, method signatures,
  options views) and **state copies**: what Beam's runner does for every bundle.
* ``timers``: **timer scans**: only the keys with a timer due are visited.
* ``drain``: **drain**: while ``LocalRun.drain`` runs, the source ends and the watermark goes to the end, and
  Beam's monitor may not end the pipeline.
* ``patch_table``: ``PATCHES``, ``PATCHER`` and the checks' printout.
* ``local_run``: ``prepare_direct_runner`` (also the garbage collector and Python's thread switch interval)
  and ``LocalRun``.

Like Beam's own local reader, the reader acknowledges messages as soon as it pulls them: a local pipeline that
dies loses what it had in flight (Dataflow acknowledges only after its checkpoint). A pipeline stopped with
``LocalRun.drain`` and ``cancel`` applies what it pulled, sends its acknowledgements and gives back what it
pulled ahead and did not take.
"""

from __future__ import annotations

from pipeline.local_runner.bundles import cached_views
from pipeline.local_runner.drain_patch import DRAINING
from pipeline.local_runner.local_run import SWITCH_INTERVAL, LocalRun, prepare_direct_runner
from pipeline.local_runner.patch_table import LOG, PATCHER, PATCHES, beam_version, main
from pipeline.local_runner.pulls import (
    ACKNOWLEDGEMENTS,
    PULLS_AHEAD,
    Acknowledgements,
    FastPullClient,
    PullsAhead,
)
from pipeline.local_runner.reader import read_from_pubsub
from pipeline.local_runner.timers import TIMER_SCAN_INTERVAL

__all__ = [
    "ACKNOWLEDGEMENTS",
    "DRAINING",
    "LOG",
    "PATCHER",
    "PATCHES",
    "PULLS_AHEAD",
    "SWITCH_INTERVAL",
    "TIMER_SCAN_INTERVAL",
    "Acknowledgements",
    "FastPullClient",
    "LocalRun",
    "PullsAhead",
    "beam_version",
    "cached_views",
    "main",
    "prepare_direct_runner",
    "read_from_pubsub",
]
