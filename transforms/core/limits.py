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

# Spanner (https://cloud.google.com/spanner/quotas#tables).
SPANNER_MAX_KEY_BYTES = 8192  # the whole primary key of a row (and of an index entry)
SPANNER_MAX_CELL_BYTES = 10 * 1024 * 1024  # one STRING or BYTES value
SPANNER_MAX_MUTATIONS_PER_COMMIT = 80_000

# Tags and free-text terms of a group (transforms/core/engine/tags.py, docs/limits.md "Tags").
# Sentry's own rules for an event's tags (Relay's TagEntry and normalize_event_tags): a key of 1 to 200
# characters from [a-zA-Z0-9_.:-], a value of 1 to 200 characters without a newline; other tags are dropped.
TAG_KEY_MAX_CHARS = 200
TAG_VALUE_MAX_CHARS = 200
# Ours: what one group keeps. Values of a key past the first 1,000 (Sentry's tag values endpoint lists at most
# 1,000) are counted in the key's "other" bucket; keys past the first 100 of a group are not kept.
TAG_VALUES_PER_KEY = 1000
TAG_KEYS_PER_GROUP = 100
# Free-text terms: words of the occurrences' titles, subtitles and culprits, lower-cased, cut to 64
# characters; a group keeps its first 256 distinct ones.
TERM_MAX_CHARS = 64
TERMS_PER_GROUP = 256
