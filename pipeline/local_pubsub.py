"""Make the local (Direct) runner's Pub/Sub reader usable: bigger pulls, short waits.

Beam's DirectRunner reads Pub/Sub with one synchronous pull of at most 10 messages that waits up to 30 s on
an idle subscription, on the same thread as everything else: about 120 messages/s at best, and timers and the
watermark stall while it waits. We wrap the reader's subscriber client so every pull asks for
``max_messages`` and returns after ``timeout`` seconds. Only local runs are affected; Dataflow uses its own
reader.

Like Beam's own local reader, this acknowledges messages as soon as they are pulled: a local pipeline that
dies loses what it had in flight (Dataflow acknowledges only after its checkpoint).
"""

from __future__ import annotations

import threading

_lock = threading.Lock()
_installed: dict[str, float] = {}


class _FastPullClient:
    def __init__(self, client, max_messages: int, timeout: float) -> None:
        self._client = client
        self._max_messages = max_messages
        self._timeout = timeout

    def pull(self, subscription, max_messages=None, timeout=None, **kwargs):
        from google.api_core import exceptions

        try:
            return self._client.pull(
                subscription=subscription, max_messages=self._max_messages, timeout=self._timeout, **kwargs
            )
        except exceptions.DeadlineExceeded:
            from google.pubsub_v1 import PullResponse

            return PullResponse()

    def __getattr__(self, name):
        return getattr(self._client, name)


def speed_up_direct_runner_pubsub(max_messages: int = 1000, timeout: float = 1.0) -> None:
    """Patch the DirectRunner's Pub/Sub read evaluator (idempotent; affects this process only)."""
    from apache_beam.runners.direct import transform_evaluator

    evaluator = transform_evaluator._PubSubReadEvaluator
    with _lock:
        _installed["max_messages"] = max_messages
        _installed["timeout"] = timeout
        if getattr(evaluator, "_occurrence_pipeline_patched", False):
            return
        original = evaluator._get_subscriber_client.__func__

        def _get_subscriber_client(cls, transform):
            client = original(cls, transform)
            return _FastPullClient(client, _installed["max_messages"], _installed["timeout"])

        evaluator._get_subscriber_client = classmethod(_get_subscriber_client)
        evaluator._occurrence_pipeline_patched = True
