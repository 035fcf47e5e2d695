"""Dead letters within Pub/Sub's limits (``transforms.core.dead_letter_fit``), checked on what we build: the
emulator enforces none of these limits. Sizes are checked against protobuf's own serialization."""

from __future__ import annotations

import pytest
from google.pubsub_v1.types import PublishRequest, PubsubMessage
from hypothesis import given
from hypothesis import strategies as st

from transforms.core import reasons
from transforms.core.dead_letter_fit import (
    DEAD_LETTER_TRUNCATED,
    cut_utf8,
    fit_pubsub_message,
    publish_request_bytes,
    pubsub_message_bytes,
)
from transforms.core.envelopes import DEAD_LETTER_ATTRIBUTES, dead_letter_to_pubsub, fit_dead_letter
from transforms.core.limits import (
    DEAD_LETTER_MAX_MESSAGE_BYTES,
    PUBSUB_MAX_ATTRIBUTE_KEY_BYTES,
    PUBSUB_MAX_ATTRIBUTE_VALUE_BYTES,
    PUBSUB_MAX_ATTRIBUTES,
    PUBSUB_MAX_REQUEST_BYTES,
)
from transforms.core.model import DeadLetter

# The longest topic name Pub/Sub allows: a project id of 30 characters and a topic id of 255.
LONGEST_TOPIC = f"projects/{'p' * 30}/topics/{'t' * 255}"


def _dead_letter(attributes: dict[str, str], *, data: bytes = b'{"id": 1}', error: str = "bad") -> DeadLetter:
    return DeadLetter(
        "1234567890123456", 1_780_000_000_000_000, data, attributes, reasons.INVALID_FIELD, error, "decode"
    )


def _request_bytes(data: bytes, attributes: dict[str, str], topic: str = LONGEST_TOPIC) -> int:
    message = PubsubMessage.pb()(data=data, attributes=attributes)
    return PublishRequest.pb()(topic=topic, messages=[message]).ByteSize()


def _assert_within_pubsub_limits(data: bytes, attributes: dict[str, str]) -> None:
    assert len(attributes) <= PUBSUB_MAX_ATTRIBUTES
    for key, value in attributes.items():
        assert len(key.encode()) <= PUBSUB_MAX_ATTRIBUTE_KEY_BYTES
        assert len(value.encode()) <= PUBSUB_MAX_ATTRIBUTE_VALUE_BYTES
    assert _request_bytes(data, attributes) <= PUBSUB_MAX_REQUEST_BYTES


def _replayed(attributes: dict[str, str]) -> dict[str, str]:
    """What a replayed dead letter's attributes are to the pipeline: the dead-letter ones are ignored."""
    return {key: value for key, value in attributes.items() if key not in DEAD_LETTER_ATTRIBUTES}


def test_95_original_attributes_are_kept_whole_with_our_five() -> None:
    originals = {f"k{i:03d}": f"v{i}" for i in range(95)}
    data, attributes = dead_letter_to_pubsub(_dead_letter(originals))
    assert len(attributes) == PUBSUB_MAX_ATTRIBUTES
    assert DEAD_LETTER_TRUNCATED not in attributes
    assert _replayed(attributes) == originals and data == b'{"id": 1}'


@pytest.mark.parametrize("count", [96, 100, 150])
def test_more_than_95_original_attributes_drop_the_last_and_say_so(count: int) -> None:
    originals = {f"k{i:03d}": f"v{i}" for i in range(count)}
    originals["content_type"] = "application/json"  # read by decoding: kept first
    originals["zz_ts"] = "2026-05-01T10:00:00Z"  # the timestamp attribute: kept first
    fitted = fit_dead_letter(_dead_letter(originals), first=("zz_ts",))
    _assert_within_pubsub_limits(fitted.data, fitted.attributes)
    assert len(fitted.attributes) == PUBSUB_MAX_ATTRIBUTES
    replayed = _replayed(fitted.attributes)
    assert len(replayed) == PUBSUB_MAX_ATTRIBUTES - 6  # our five and dead_letter_truncated
    assert replayed["content_type"] == "application/json" and replayed["zz_ts"] == "2026-05-01T10:00:00Z"
    assert set(replayed) | set(fitted.dropped) == set(originals)
    unprotected = [key for key in sorted(originals) if key not in ("content_type", "zz_ts")]
    assert fitted.dropped == {key: originals[key] for key in unprotected[-len(fitted.dropped) :]}
    marker = fitted.attributes[DEAD_LETTER_TRUNCATED]
    assert marker.startswith(f"attributes dropped ({len(fitted.dropped)}): k")
    assert fitted.data == b'{"id": 1}'  # replayed, the message is what the pipeline saw


def test_a_long_error_is_cut_to_1024_bytes_at_a_character() -> None:
    for error in ("x" * 5000, "é" * 3000, "a" + "😀" * 600):
        _, attributes = dead_letter_to_pubsub(_dead_letter({}, error=error))
        value = attributes["dead_letter_error"]
        assert len(value.encode()) <= PUBSUB_MAX_ATTRIBUTE_VALUE_BYTES
        assert value.endswith("...") and error.startswith(value[:-3])
        assert len(value.encode()) > PUBSUB_MAX_ATTRIBUTE_VALUE_BYTES - 8
        assert DEAD_LETTER_TRUNCATED not in attributes  # ours: cut, not counted as a loss of the original
    _, attributes = dead_letter_to_pubsub(_dead_letter({}, error="é" * 512))  # exactly 1024 bytes
    assert attributes["dead_letter_error"] == "é" * 512


def test_an_original_attribute_pubsub_could_not_carry_is_dropped() -> None:
    originals = {
        "k" * PUBSUB_MAX_ATTRIBUTE_KEY_BYTES: "key at the limit",
        "k" * (PUBSUB_MAX_ATTRIBUTE_KEY_BYTES + 1): "key past the limit",
        "at": "v" * PUBSUB_MAX_ATTRIBUTE_VALUE_BYTES,
        "past": "v" * (PUBSUB_MAX_ATTRIBUTE_VALUE_BYTES + 1),
    }
    fitted = fit_dead_letter(_dead_letter(originals))
    _assert_within_pubsub_limits(fitted.data, fitted.attributes)
    assert set(_replayed(fitted.attributes)) == {"k" * PUBSUB_MAX_ATTRIBUTE_KEY_BYTES, "at"}
    assert set(fitted.dropped) == {"k" * (PUBSUB_MAX_ATTRIBUTE_KEY_BYTES + 1), "past"}


def test_an_original_that_fits_with_our_attributes_is_kept_whole_up_to_the_last_byte() -> None:
    originals = {"content_type": "application/json"}
    ours = dead_letter_to_pubsub(_dead_letter(originals, data=b""))[1]
    size = DEAD_LETTER_MAX_MESSAGE_BYTES - pubsub_message_bytes(0, ours)
    while pubsub_message_bytes(size + 1, ours) <= DEAD_LETTER_MAX_MESSAGE_BYTES:
        size += 1
    while pubsub_message_bytes(size, ours) > DEAD_LETTER_MAX_MESSAGE_BYTES:
        size -= 1
    data = b"x" * size
    fitted = fit_dead_letter(_dead_letter(originals, data=data))
    assert fitted.truncated is None and fitted.data == data
    assert pubsub_message_bytes(len(data), fitted.attributes) == DEAD_LETTER_MAX_MESSAGE_BYTES
    _assert_within_pubsub_limits(fitted.data, fitted.attributes)
    fitted = fit_dead_letter(_dead_letter(originals, data=data + b"x"))
    assert fitted.truncated is not None


def test_an_original_too_large_for_a_dead_letter_gives_way_error_first_then_attributes_then_data() -> None:
    """An original of 9,999,000 bytes with two attributes (it fitted Pub/Sub; with our five it does not)."""
    originals = {"content_type": "application/json", "trace": "t" * 1000}
    error = "e" * 1000
    data = b"d" * (DEAD_LETTER_MAX_MESSAGE_BYTES - 1900)
    # The error cut to 256 bytes makes room for the rest: nothing of the original gives way.
    fitted = fit_dead_letter(_dead_letter(originals, data=data, error=error))
    assert (
        fitted.data == data
        and fitted.truncated is None
        and len(fitted.attributes["dead_letter_error"]) == 256
    )
    _assert_within_pubsub_limits(fitted.data, fitted.attributes)
    # Larger: "trace" goes too, content_type stays, the data is whole.
    data = b"d" * (DEAD_LETTER_MAX_MESSAGE_BYTES - 1200)
    fitted = fit_dead_letter(_dead_letter(originals, data=data, error=error))
    assert fitted.data == data and set(fitted.dropped) == {"trace"}
    assert _replayed(fitted.attributes) == {"content_type": "application/json"}
    _assert_within_pubsub_limits(fitted.data, fitted.attributes)
    # Larger still (what Pub/Sub itself never delivers): the data is cut at its end, and says so.
    data = b"d" * 9_999_000
    fitted = fit_dead_letter(_dead_letter(originals, data=data, error=error))
    assert data.startswith(fitted.data) and len(fitted.data) < len(data)
    assert fitted.attributes[DEAD_LETTER_TRUNCATED].startswith(
        f"data cut from {len(data)} to {len(fitted.data)} bytes; attributes dropped (1): trace"
    )
    _assert_within_pubsub_limits(fitted.data, fitted.attributes)
    assert len(data) - len(fitted.data) < 5_000  # only what it takes


def test_dead_letter_truncated_of_an_earlier_failure_is_replaced() -> None:
    first = fit_dead_letter(_dead_letter({f"k{i:03d}": "v" for i in range(99)}))
    again = fit_dead_letter(_dead_letter(_replayed(first.attributes) | {DEAD_LETTER_TRUNCATED: "old"}))
    assert DEAD_LETTER_TRUNCATED not in again.attributes  # 94 originals now fit: nothing gave way this time
    assert len(again.attributes) == 99


@given(
    data=st.binary(max_size=300),
    attributes=st.dictionaries(st.text(max_size=40), st.text(max_size=200), max_size=20),
)
def test_message_sizes_are_protobufs(data: bytes, attributes: dict[str, str]) -> None:
    message = PubsubMessage.pb()(data=data, attributes=attributes)
    request = PublishRequest.pb()(topic=LONGEST_TOPIC, messages=[message, message])
    assert publish_request_bytes(LONGEST_TOPIC) + 2 * pubsub_message_bytes(len(data), attributes) == (
        request.ByteSize()
    )


@given(st.text(max_size=400), st.integers(min_value=3, max_value=300))
def test_cut_utf8_keeps_within_the_limit_and_a_prefix(text: str, limit: int) -> None:
    cut = cut_utf8(text, limit)
    assert len(cut.encode("utf-8", "surrogatepass")) <= max(limit, len(text.encode("utf-8", "surrogatepass")))
    if cut != text:
        assert len(cut.encode("utf-8", "surrogatepass")) <= limit and text.startswith(cut[:-3])


def test_fit_pubsub_message_keeps_our_attributes_over_originals_of_the_same_name() -> None:
    fitted = fit_pubsub_message(b"x", {"a": "original", "b": "kept"}, {"a": "ours"})
    assert fitted.attributes == {"b": "kept", "a": "ours"} and fitted.truncated is None
