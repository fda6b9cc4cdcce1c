"""In-memory F&O data: tables per entity set, company scoping, number sequences, undo log for changesets.

Entity rules (defaults, foreign keys, duplicates) live in `rules.py`; this module only keeps rows.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from connector.dev.sandbox.d365.entities import blank_record, key_values
from connector.dev.sandbox.d365.metadata import EntitySet, Schema, load_schema

ChangeListener = Callable[[str, str, dict[str, Any]], None]  # (entity set, Created|Updated|Deleted, record)


@dataclass
class NumberSequence:
    """F&O number sequences: `format` gets `company` (upper case) and `n`; e.g. DAT-000053."""

    format: str = "{company}-{n:06d}"
    next: int = 1

    def take(self, company: str) -> str:
        value = self.format.format(company=company.upper(), n=self.next)
        self.next += 1
        return value


@dataclass
class Transaction:
    undo: list[Callable[[], None]] = field(default_factory=list)
    changes: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)


class Store:
    def __init__(self, schema: Schema | None = None) -> None:
        self.schema = schema or load_schema()
        self.tables: dict[str, dict[tuple[str, ...], dict[str, Any]]] = {n: {} for n in self.schema.entity_sets}
        self.sequences: dict[tuple[str, str], NumberSequence] = {}
        self.sequence_format = "{company}-{n:06d}"
        self.product_texts: dict[tuple[str, str], dict[str, str]] = {}  # (company, item) -> ProductName...
        self.units: set[str] = set()
        self.default_company = "usmf"
        self._rec_ids = itertools.count(5637144576)  # F&O RecIds start here in the recorded ETags
        self._tx: Transaction | None = None
        # Writes are serialized: a changeset may await (injected latency) while it holds the transaction.
        self.write_lock = asyncio.Lock()
        self.listeners: list[ChangeListener] = []

    def entity(self, name: str) -> EntitySet:
        return self.schema.entity_sets[name]

    # ---- transactions -------------------------------------------------------------------------
    def begin(self) -> None:
        assert self._tx is None, "nested transactions are not supported"
        self._tx = Transaction()

    def commit(self) -> None:
        tx, self._tx = self._tx, None
        for change in tx.changes if tx else []:
            self._notify(*change)

    def rollback(self) -> None:
        tx, self._tx = self._tx, None
        for undo in reversed(tx.undo if tx else []):
            undo()

    def _notify(self, entity_set: str, change: str, record: dict[str, Any]) -> None:
        for listener in self.listeners:
            listener(entity_set, change, dict(record))

    def _changed(self, entity_set: str, change: str, record: dict[str, Any]) -> None:
        if self._tx is not None:
            self._tx.changes.append((entity_set, change, dict(record)))
        else:
            self._notify(entity_set, change, record)

    def _remember(self, undo: Callable[[], None]) -> None:
        if self._tx is not None:
            self._tx.undo.append(undo)

    # ---- rows ---------------------------------------------------------------------------------
    def rows(self, entity_set: str) -> list[dict[str, Any]]:
        return list(self.tables[entity_set].values())

    def find(self, entity_set: str, values: dict[str, str]) -> dict[str, Any] | None:
        entity = self.entity(entity_set)
        return self.tables[entity_set].get(key_values(entity, values))

    def insert(self, entity_set: str, values: dict[str, Any]) -> dict[str, Any]:
        entity = self.entity(entity_set)
        record = blank_record(entity, self.schema)
        record.update(values)
        record["_recid"] = next(self._rec_ids)
        record["_version"] = 1
        key = key_values(entity, record)
        table = self.tables[entity_set]
        assert key not in table, f"duplicate {entity_set} {key}: callers check first"
        table[key] = record
        self._remember(lambda: _discard(table, key))
        self._changed(entity_set, "Created", record)
        return record

    def update(self, entity_set: str, record: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
        before = dict(record)
        record.update(values)
        record["_version"] = int(record["_version"]) + 1
        self._remember(lambda: _restore(record, before))
        self._changed(entity_set, "Updated", record)
        return record

    def delete(self, entity_set: str, record: dict[str, Any]) -> None:
        entity = self.entity(entity_set)
        key = key_values(entity, record)
        table = self.tables[entity_set]
        table.pop(key, None)
        self._remember(lambda: table.__setitem__(key, record))
        self._changed(entity_set, "Deleted", record)

    def next_number(self, field_name: str, company: str) -> str:
        seq = self.sequences.setdefault((field_name, company.casefold()), NumberSequence(self.sequence_format))
        value = seq.take(company)
        self._remember(lambda: None)  # F&O number sequences are not rolled back either (gaps are normal)
        return value

    def companies(self) -> set[str]:
        return {str(r["LegalEntityId"]).casefold() for r in self.rows("LegalEntities")}

    def clear(self) -> None:
        for table in self.tables.values():
            table.clear()
        self.sequences.clear()
        self.product_texts.clear()
        self.units.clear()


def _discard(table: dict[tuple[str, ...], dict[str, Any]], key: tuple[str, ...]) -> None:
    table.pop(key, None)


def _restore(record: dict[str, Any], before: dict[str, Any]) -> None:
    record.clear()
    record.update(before)
