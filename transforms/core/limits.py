"""Limits of the services we write to and of our own encoders: the one place that names them.

Every limit a message can run into on its way through the pipeline is checked once, at decoding (or, for what
only the publisher of dead letters sees, where dead letters are published), so that a message that would break
a later step becomes a dead letter with a reason that names the limit, before it reaches a key buffer.
docs/limits.md is the table of these limits and of what happens at and past each.
"""

from __future__ import annotations

# Pub/Sub (https://cloud.google.com/pubsub/quotas#resource_limits).
PUBSUB_MAX_MESSAGE_BYTES = 10_000_000  # a message's data (and a publish request's total size)
PUBSUB_MAX_REQUEST_BYTES = 10_000_000  # one publish request
PUBSUB_MAX_ATTRIBUTES = 100  # attributes of one message
PUBSUB_MAX_ATTRIBUTE_KEY_BYTES = 256
PUBSUB_MAX_ATTRIBUTE_VALUE_BYTES = 1024
PUBSUB_MAX_MESSAGES_PER_REQUEST = 1000
# A dead letter, serialized as Pub/Sub counts it, alone in a publish request with the name of its topic (at most
# 255 characters of topic id after "projects/PROJECT/topics/") and the request's framing: under the request limit.
DEAD_LETTER_MAX_MESSAGE_BYTES = PUBSUB_MAX_REQUEST_BYTES - 4096
# When a dead letter is too large for a message, its error is cut to this before anything of the original gives way.
DEAD_LETTER_SHORT_ERROR_BYTES = 256

# Spanner (https://cloud.google.com/spanner/quotas#tables).
SPANNER_MAX_KEY_BYTES = 8192  # the whole primary key of a row (and of an index entry)
SPANNER_MAX_CELL_BYTES = 10 * 1024 * 1024  # one STRING or BYTES value
SPANNER_MAX_MUTATIONS_PER_COMMIT = 80_000
