"""Handing rows to a Spanner transaction: the prebuilt mutation straight into its buffer, once that is checked.

The client's ``insert``, ``update`` and ``insert_or_update`` convert every value again, through several
layers, where ``spanner_rows.write_mutation`` builds the same ``Mutation`` in a fraction of that time
(docs/performance.md). So the mutation built by ``write_mutation`` is appended to the transaction's buffer,
``_mutations``: the list those methods append to and ``commit`` sends, a private attribute of the client
library. Whether it still is that is checked once per process, on the first rows written: they go through the
public method, and the buffer is used from then on only if that call appended exactly the mutation
``write_mutation`` builds to a list ``_mutations``. Otherwise every write goes through the public methods
(slower, the same rows), and one WARNING says so. Once the buffer is used, ``spanner_writer.buffer_plan`` hands
over rows the C extension encoded as it grouped them (``add_encoded``): the same mutation, built from its bytes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from transforms.storage import spanner_rows as rows

_LOG = logging.getLogger(__name__)


class MutationBuffer:
    """How rows are given to a transaction (see the module docstring). ``private``: None until checked, then
    whether the transaction's buffer is used (a test may set it to force one way)."""

    KINDS = ("insert", "update", "insert_or_update")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.private: bool | None = None

    def add(self, transaction: Any, kind: str, table: str, columns: Sequence[str], values: Sequence) -> None:
        """Write ``values`` (rows in wire form, ``spanner_rows``) of ``table`` in ``transaction`` (``kind``: one
        of ``KINDS``)."""
        if self.private:
            transaction._mutations.append(rows.write_mutation(kind, table, columns, values))
            return
        if self.private is False:
            getattr(transaction, kind)(table, columns, values)
            return
        buffer = getattr(transaction, "_mutations", None)
        before = len(buffer) if isinstance(buffer, list) else None
        getattr(transaction, kind)(table, columns, values)
        usable = (
            before is not None
            and len(buffer) == before + 1
            and buffer[-1] == rows.write_mutation(kind, table, columns, values)
        )
        with self._lock:
            if self.private is not None:
                return
            self.private = usable
        if not usable:
            _LOG.warning(
                "the Spanner client (%s) does not keep a transaction's mutations where this pipeline puts its "
                "prebuilt ones (Transaction._mutations); rows go through its public insert/update methods, "
                "which is slower",
                type(transaction).__module__,
            )

    @property
    def takes_encoded(self) -> bool:
        """Whether ``add_encoded`` may be called: the buffer is used, and the extension encodes rows."""
        return self.private is True and rows.encode_table is not None

    def add_encoded(
        self, transaction: Any, kind: str, table: str, columns: Sequence[str], data: bytes
    ) -> None:
        """``add`` of rows already encoded (``commit_plan.mutation_groups(plan, encoded=True)``'s bytes), where
        ``takes_encoded``."""
        transaction._mutations.append(rows.write_mutation_encoded(kind, table, columns, data))


BUFFER = MutationBuffer()


def add(transaction: Any, kind: str, table: str, columns: Sequence[str], values: Sequence) -> None:
    """``BUFFER.add``: the process's way of giving rows to a transaction."""
    BUFFER.add(transaction, kind, table, columns, values)
