"""The issue index's request limits: the one place that names them (docs/limits.md, "The issue index API").

Each bound keeps one request's cost proportional to a page: lists a request carries multiply the key lookups
of every candidate row, so they are bounded before any read; the body is refused before it is read in full.
Past a limit the answer is a 400 whose message names the limit and its value.
"""

from __future__ import annotations

from transforms.core.limits import SPANNER_MAX_KEY_BYTES

# Repeated query parameters.
MAX_IDS = 1000  # id= (Sentry's BULK_MUTATION_LIMIT)
MAX_PROJECTS = 1000  # project=
MAX_ENVIRONMENTS = 100  # environment=

# The search query.
MAX_QUERY_CHARS = 4096  # the whole query string
MAX_LIST_VALUES = 100  # items of one [a, b, ...] list
# Distinct values looked up by key for each candidate row (releases and environments named by the query and the
# environment parameters, together): a candidate costs one key read per value.
MAX_LOOKUP_VALUES = 200
# One value (an environment parameter, a quoted or listed query value): longer ones cannot be a stored key.
MAX_VALUE_BYTES = SPANNER_MAX_KEY_BYTES // 2

# The body of a bulk update (a small JSON object): refused before it is read past this size.
MAX_BODY_BYTES = 65_536

# Issue ids are Spanner INT64s; 0 and negative ids are never assigned.
MAX_ISSUE_ID = 2**63 - 1
