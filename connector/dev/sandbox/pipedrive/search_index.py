"""The search routes' index: exact-match lookups without a scan per search (a catalogue has 10,000+
records), kept current by the store on every write, with an optional indexing lag.

Pipedrive's search runs on an index that may lag a write (UNCONFIRMED by how much): with a lag set,
a record's new values become findable only `lag` seconds after the write, and its old values stop
being findable at once (the strict reading: in between, a search finds the record by neither).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

Clock = Callable[[], float]


# The custom field types the Search API looks into (pipedrive-api.md, search endpoints); an enum's option id,
# a user/org/person id or a date is never matched, so a search must not find them here either.
SEARCHABLE_TYPES = frozenset({"address", "varchar", "text", "varchar_auto", "double", "monetary", "phone"})


def _searchable_text(value: Any) -> str | None:
    if isinstance(value, dict):  # monetary {value, currency}; address {value, ...}
        value = value.get("value")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    return str(value)


def field_values(record: Mapping[str, Any], name: str, searchable: Collection[str] = ()) -> list[str]:
    """The lower-cased texts a search on field `name` matches, for one record; `searchable` names the
    custom fields of a searchable type."""
    if name == "custom_fields":
        custom = record.get("custom_fields") or {}
        texts = (_searchable_text(v) for k, v in custom.items() if k in searchable)
        values = [t for t in texts if t is not None]
    elif name == "address":
        values = [str((record.get("address") or {}).get("value") or "")]
    elif name == "notes" or record.get(name) is None:
        values = []
    else:
        values = [str(record[name])]
    return [v.lower() for v in values]


class SearchIndex:
    """(entity, field, lower-cased value) -> {record id: time it becomes findable}."""

    FIELDS = ("code", "name", "custom_fields", "address", "title", "email", "phone")

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self.lag = 0.0
        self.clear()

    def clear(self) -> None:
        self._entries: dict[tuple[str, str, str], dict[int, float]] = {}
        self._keys: dict[tuple[str, int], list[tuple[str, str, str]]] = {}

    def put(self, entity: str, record: Mapping[str, Any], searchable: Collection[str] = ()) -> None:
        """(Re)index one record after a write: its old values go at once, its new ones after the lag."""
        record_id = int(record["id"])
        for key in self._keys.pop((entity, record_id), []):
            self._entries.get(key, {}).pop(record_id, None)
        findable_from = self.clock() + self.lag
        keys = [(entity, name, value) for name in self.FIELDS for value in field_values(record, name, searchable)
                if value]  # fmt: skip
        for key in keys:
            self._entries.setdefault(key, {})[record_id] = findable_from
        self._keys[(entity, record_id)] = keys

    def exact(self, entity: str, fields: Iterable[str], needle: str) -> set[int]:
        """Ids of records whose value in any of `fields` equals `needle` (case-insensitive), as indexed now."""
        now = self.clock()
        found: set[int] = set()
        for name in fields:
            for record_id, findable_from in self._entries.get((entity, name, needle.lower()), {}).items():
                if findable_from <= now:
                    found.add(record_id)
        return found
