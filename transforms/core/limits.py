"""Limits of the services we write to and of our own encoders: the one place that names them.

Every limit a message can run into on its way through the pipeline is checked once, at decoding (or, for what
only the publisher of dead letters sees, where dead letters are published), so that a message that would break
a later step becomes a dead letter with a reason that names the limit, before it reaches a key buffer.
docs/limits.md is the table of these limits and of what happens at and past each; ``bench/limits.py`` prints
the measured ones (where our encoders break).
"""

from __future__ import annotations

from typing import Any

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

# Spanner (https://cloud.google.com/spanner/quotas#tables, .../docs/working-with-json).
SPANNER_MAX_KEY_BYTES = (
    8192  # a row's whole primary key (an index entry's too): 8 a number, a string its bytes
)
SPANNER_MAX_CELL_BYTES = 10 * 1024 * 1024  # one STRING, BYTES or ARRAY value
SPANNER_MAX_STRING_CHARS = 2_621_440  # STRING(MAX): characters (the emulator enforces it too)
SPANNER_MAX_JSON_DEPTH = 80  # levels of objects and arrays in a JSON value; the emulator does not check
SPANNER_MAX_JSON_BYTES = 10_000_000  # a JSON value's normalised document; the emulator does not check
SPANNER_MAX_MUTATIONS_PER_COMMIT = 80_000
SPANNER_MAX_COMMIT_BYTES = 100_000_000  # one commit, index entries included

# Sentry's limits we follow (Relay validates them with sentry-release-parser's validate_release and
# validate_environment; an event whose release or environment is longer keeps everything else).
MAX_RELEASE_BYTES = 200
MAX_ENVIRONMENT_BYTES = 64

# Ours.
# A JSON value of a message (evidence_data, event.sdk/user/request/contexts) is stored one level down at
# most (the event inside Events.Payload; a feedback occurrence's evidence fields inside Groups.Data.metadata),
# so it may itself be nested one level less than Spanner's JSON allows.
MAX_JSON_FIELD_DEPTH = SPANNER_MAX_JSON_DEPTH - 1
# Fingerprint parts: every part is hashed and stored (Occurrences.Fingerprint and Hashes); no producer needs
# more, and it bounds the hashing a message costs and the Hashes array (32 bytes a part) far below a cell.
MAX_FINGERPRINT_PARTS = 10_000
# Message ids (an archive's are anything): a dead letter carries its id in the original_message_id attribute.
MAX_MESSAGE_ID_BYTES = PUBSUB_MAX_ATTRIBUTE_VALUE_BYTES
# The largest --max_payload_bytes the pipeline accepts: every string of a message must fit a STRING(MAX) cell
# (a string has no more characters than the message has bytes), and a message fits Pub/Sub (10 MB) with its
# dead-letter attributes, and a key state holding it whole (its bytes and decoded form) fits a 10 MiB cell.
MAX_PAYLOAD_BYTES_CEILING = SPANNER_MAX_STRING_CHARS
# A stored JSON document is at most this many times the size of the message it comes from (a title written
# twice in Groups.Data, with every character a control character that JSON escapes in 6 bytes; numbers such
# as 1e15 written out in full): messages up to SPANNER_MAX_JSON_BYTES / this need no measuring.
MAX_JSON_GROWTH = 16


def exceeds(text: str, limit: int) -> int | None:
    """The UTF-8 length of ``text`` when it is more than ``limit`` bytes, else None (cheap for short text)."""
    length = len(text)
    if length * 4 <= limit:
        return None
    size = len(text.encode("utf-8", "surrogatepass"))
    return size if size > limit else None


def nesting_depth(value: Any, limit: int) -> int:
    """Levels of objects and arrays in ``value`` (a scalar is 0, ``{}`` 1), counted up to ``limit + 1``.

    Iterative, so a value nested far deeper than Python's recursion limit is measured without recursing; it
    stops as soon as the depth is past ``limit``.
    """
    if type(value) is not dict and type(value) is not list:
        return 0
    deepest = 0
    stack = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        container, depth = pop()
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                return deepest
        children = container.values() if type(container) is dict else container
        for child in children:
            kind = type(child)
            if kind is dict or kind is list:
                if child:
                    push((child, depth + 1))
                elif depth + 1 > deepest:
                    deepest = depth + 1
                    if deepest > limit:
                        return deepest
    return deepest


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
