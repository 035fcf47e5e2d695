"""The group type registry: the single source of every per-type rule.

Ids, slugs, categories, default priorities, noise configs and creation quotas
are Sentry's (``sentry/issues/grouptype.py`` at commit fdb2decc, mid-2024).
"""

from __future__ import annotations

from dataclasses import dataclass

from transforms.core.enums import GroupCategory, Priority

HOUR_SECONDS = 3600
DEFAULT_IGNORE_LIMIT = 3
DEFAULT_NOISE_EXPIRY_SECONDS = 24 * HOUR_SECONDS


@dataclass(frozen=True, slots=True)
class NoiseConfig:
    """A new group needs ``ignore_limit`` distinct occurrences, none more than ``expiry_seconds`` apart."""

    ignore_limit: int = DEFAULT_IGNORE_LIMIT
    expiry_seconds: int = DEFAULT_NOISE_EXPIRY_SECONDS


@dataclass(frozen=True, slots=True)
class Quota:
    """At most ``limit`` new groups per (project, type) in any ``window_seconds`` of message time."""

    window_seconds: int = HOUR_SECONDS
    granularity_seconds: int = 60
    limit: int = 5


@dataclass(frozen=True, slots=True)
class GroupType:
    type_id: int
    slug: str
    description: str
    category: GroupCategory
    default_priority: Priority = Priority.MEDIUM
    noise_config: NoiseConfig | None = None
    released: bool = False
    in_default_search: bool = True
    creation_quota: Quota = Quota()

    @property
    def ingest_feature(self) -> str:
        """The organization feature that lets an unreleased type be ingested."""
        return f"organizations:{self.slug.replace('_', '-')}-ingest"

    def allow_ingest(self, features: frozenset[str] | set[str]) -> bool:
        return self.released or self.ingest_feature in features


_PERF = GroupCategory.PERFORMANCE
_LOW = Priority.LOW
_NOISE = NoiseConfig()

_TYPES: tuple[GroupType, ...] = (
    GroupType(1, "error", "Error", GroupCategory.ERROR, Priority.MEDIUM, released=True),
    GroupType(1001, "performance_slow_db_query", "Slow DB Query", _PERF, _LOW, NoiseConfig(100), True),
    GroupType(
        1004,
        "performance_render_blocking_asset_span",
        "Large Render Blocking Asset",
        _PERF,
        _LOW,
        _NOISE,
        True,
    ),
    GroupType(1006, "performance_n_plus_one_db_queries", "N+1 Query", _PERF, _LOW, _NOISE, True),
    GroupType(
        1007,
        "performance_consecutive_db_queries",
        "Consecutive DB Queries",
        _PERF,
        _LOW,
        NoiseConfig(15),
        True,
    ),
    GroupType(1008, "performance_file_io_main_thread", "File IO on Main Thread", _PERF, _LOW, _NOISE, True),
    GroupType(1009, "performance_consecutive_http", "Consecutive HTTP", _PERF, _LOW, NoiseConfig(5), True),
    GroupType(1010, "performance_n_plus_one_api_calls", "N+1 API Call", _PERF, _LOW, None, True),
    GroupType(1011, "performance_m_n_plus_one_db_queries", "MN+1 Query", _PERF, _LOW, _NOISE, True),
    GroupType(
        1012, "performance_uncompressed_assets", "Uncompressed Asset", _PERF, _LOW, NoiseConfig(100), True
    ),
    GroupType(1013, "performance_db_main_thread", "DB on Main Thread", _PERF, _LOW, _NOISE, True),
    GroupType(1015, "performance_large_http_payload", "Large HTTP payload", _PERF, _LOW, _NOISE, True),
    GroupType(1016, "performance_http_overhead", "HTTP/1.1 Overhead", _PERF, _LOW, NoiseConfig(20), False),
    GroupType(
        1017, "performance_duration_regression", "Transaction Duration Regression (Experimental)", _PERF, _LOW
    ),
    GroupType(
        1018,
        "performance_p95_endpoint_regression",
        "Endpoint Regression",
        _PERF,
        Priority.MEDIUM,
        released=True,
    ),
    GroupType(2001, "profile_file_io_main_thread", "File I/O on Main Thread", _PERF, _LOW),
    GroupType(2002, "profile_image_decode_main_thread", "Image Decoding on Main Thread", _PERF, _LOW),
    GroupType(2003, "profile_json_decode_main_thread", "JSON Decoding on Main Thread", _PERF, _LOW),
    GroupType(2004, "profile_core_data_main_exp", "Core Data on Main Thread", _PERF, _LOW),
    GroupType(2006, "profile_view_is_slow_experimental", "View Render/Layout/Update is slow", _PERF, _LOW),
    GroupType(2007, "profile_regex_main_thread", "Regex on Main Thread", _PERF, _LOW, released=True),
    GroupType(2008, "profile_frame_drop_experimental", "Frame Drop", _PERF, _LOW),
    GroupType(2009, "profile_frame_drop", "Frame Drop", _PERF, _LOW, NoiseConfig(2000), True),
    GroupType(
        2010, "profile_function_regression_exp", "Function Duration Regression (Experimental)", _PERF, _LOW
    ),
    GroupType(
        2011, "profile_function_regression", "Function Regression", _PERF, Priority.MEDIUM, released=True
    ),
    # 4002 and 4003 are Sentry's deprecated aliases of 4001: same slug, so they share its quota window.
    *(
        GroupType(
            type_id,
            "monitor_check_in_failure",
            "Crons Monitor Failed",
            GroupCategory.CRON,
            Priority.HIGH,
            released=True,
            creation_quota=Quota(limit=60_000),
        )
        for type_id in (4001, 4002, 4003)
    ),
    GroupType(5001, "replay_click_dead", "Dead Click Detected", GroupCategory.REPLAY, Priority.MEDIUM),
    GroupType(
        5002, "replay_click_rage", "Rage Click Detected", GroupCategory.REPLAY, Priority.MEDIUM, released=True
    ),
    GroupType(
        5003,
        "replay_hydration_error",
        "Hydration Error Detected",
        GroupCategory.REPLAY,
        Priority.MEDIUM,
        released=True,
    ),
    GroupType(
        6001,
        "feedback",
        "Feedback",
        GroupCategory.FEEDBACK,
        Priority.MEDIUM,
        released=True,
        in_default_search=False,
        creation_quota=Quota(limit=1000),
    ),
    # Released or not depending on Sentry's version; at the pinned commit it is behind a feature.
    GroupType(
        7001,
        "uptime_domain_failure",
        "Uptime Domain Monitor Failure",
        GroupCategory.UPTIME,
        Priority.HIGH,
        creation_quota=Quota(limit=1000),
    ),
    GroupType(8002, "metric_issue_poc", "Metric Issue POC", GroupCategory.METRIC_ALERT, Priority.HIGH),
)

GROUP_TYPES: dict[int, GroupType] = {group_type.type_id: group_type for group_type in _TYPES}
# The canonical type for each slug (the lowest id: aliases resolve to it).
GROUP_TYPES_BY_SLUG: dict[str, GroupType] = {}
for _group_type in _TYPES:
    GROUP_TYPES_BY_SLUG.setdefault(_group_type.slug, _group_type)


def get_group_type(type_id: int) -> GroupType | None:
    return GROUP_TYPES.get(type_id)
