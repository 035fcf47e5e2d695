"""Releases: what the key knows of them, how two versions are ordered, and what a resolution covers.

Rules (rule 5.3, E8, E14):

* A release's first-seen time is the smallest message time of any message that
  named it in the project: an occurrence's event ``release`` (feature-gated
  occurrences name nothing) or a resolve's ``resolution.version``.
* Two versions compare by semantic versioning (2.0.0) when both parse as semver
  after removing an identical ``package@`` prefix; otherwise by first-seen time.
* ``in_release V`` covers an event release R iff R is older than V (V itself
  still failing is a regression); ``in_next_release V`` covers R iff R is V or
  older. An event without a release is covered by any resolution.

The key keeps the first-seen time of the releases it recorded itself, in a
bounded map (``MAX_KNOWN_RELEASES`` most recently first-seen versions). It emits
``RecordRelease`` only when a version is new to that map or seen earlier than
recorded, so a busy key does not write the Releases table on every message
(writers keep the minimum). For ordering, the key's knowledge is combined with
the project's (``ReleaseBook``) by taking the minimum.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from transforms.core.enums import ResolutionType

MAX_KNOWN_RELEASES = 32

_NUMERIC = r"0|[1-9]\d*"
_PRERELEASE_ID = r"0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*"
_SEMVER = re.compile(
    rf"^(?P<major>{_NUMERIC})\.(?P<minor>{_NUMERIC})\.(?P<patch>{_NUMERIC})"
    rf"(?:-(?P<pre>(?:{_PRERELEASE_ID})(?:\.(?:{_PRERELEASE_ID}))*))?"
    r"(?:\+(?P<build>[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)

# A precedence key: (major, minor, patch, is_release, pre-release identifiers). Identifiers are
# (0, number) or (1, text) so that numeric ones sort below alphanumeric ones, as semver says.
SemverKey = tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]


@lru_cache(maxsize=4096)
def parse_semver(version: str) -> tuple[str, SemverKey] | None:
    """``(package prefix, precedence key)`` if ``version`` is semver after an optional ``package@``, else None.

    Build metadata does not take part in precedence. ``1.0`` is not semver.
    """
    package, at, rest = version.rpartition("@")
    match = _SEMVER.match(rest if at else version)
    if match is None:
        return None
    pre = match.group("pre")
    identifiers: tuple[tuple[int, int | str], ...] = ()
    if pre is not None:
        identifiers = tuple((0, int(part)) if part.isdigit() else (1, part) for part in pre.split("."))
    key = (
        int(match.group("major")),
        int(match.group("minor")),
        int(match.group("patch")),
        0 if pre is not None else 1,
        identifiers,
    )
    return (package if at else "", key)


def semver_pair(left: str, right: str) -> tuple[SemverKey, SemverKey] | None:
    """Both precedence keys when the two versions compare by semver (same package prefix), else None."""
    parsed_left = parse_semver(left)
    if parsed_left is None:
        return None
    parsed_right = parse_semver(right)
    if parsed_right is None or parsed_right[0] != parsed_left[0]:
        return None
    return parsed_left[1], parsed_right[1]


FirstSeen = Callable[[str], "int | None"]


def resolution_covers(
    resolution_type: str,
    resolution_version: str,
    release: str | None,
    first_seen: FirstSeen,
) -> bool:
    """Whether a release resolution still covers an event of ``release`` (rule 5.3 condition 3).

    ``first_seen`` gives the first-seen time of a version (None if unknown). An
    unknown event release is taken as newer than anything known: it cannot be
    shown to be covered.
    """
    if release is None:
        return True
    if release == resolution_version:
        return resolution_type == ResolutionType.IN_NEXT_RELEASE
    pair = semver_pair(release, resolution_version)
    if pair is not None:
        event_key, resolution_key = pair
        if resolution_type == ResolutionType.IN_NEXT_RELEASE:
            return event_key <= resolution_key
        return event_key < resolution_key
    event_first_seen = first_seen(release)
    resolution_first_seen = first_seen(resolution_version)
    if event_first_seen is None or resolution_first_seen is None:
        return False
    return event_first_seen < resolution_first_seen


def follows_semver(release: str | None, resolution_version: str) -> bool:
    return release is not None and semver_pair(release, resolution_version) is not None


def record_release(known: dict[str, int], version: str, message_time: int) -> bool:
    """Note that ``version`` was named at ``message_time``; True when a ``RecordRelease`` must be emitted.

    ``known`` is the key's bounded map version -> first-seen time. When it
    grows past ``MAX_KNOWN_RELEASES`` the version first seen longest ago is
    forgotten (ties: the smallest version string), which only costs one more
    ``RecordRelease`` if it is named again.
    """
    recorded = known.get(version)
    if recorded is not None and recorded <= message_time:
        return False
    known[version] = message_time
    if recorded is None and len(known) > MAX_KNOWN_RELEASES:
        oldest = min(known.items(), key=_oldest_first)[0]
        del known[oldest]
    return True


def _oldest_first(item: tuple[str, int]) -> tuple[int, str]:
    return item[1], item[0]
