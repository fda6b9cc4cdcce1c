"""Custom fields: 40-character hash keys <-> configured names, option ids <-> labels.

Hash keys differ per Pipedrive account, so configuration names a field by our own name and points
it at either the hash key or the field's display name. Definitions are cached for `ttl` seconds and
re-read once when an unknown key, name or label shows up (a field or option was added since).
Hash keys are used exactly as Pipedrive gives them: never renamed, lower-cased or trimmed.
Value shapes: docs/api-facts.md, Pipedrive §7 (v2 enum = option id, set = list of ids,
`include_option_labels` objects `{id, label}`; monetary/address objects pass through untouched).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from connector.pipedrive.errors import FieldResolutionError
from connector.pipedrive.models import FieldDefinition

if TYPE_CHECKING:
    from connector.pipedrive.client import FieldEntity, PipedriveClient

Loader = Callable[[], Awaitable[list[FieldDefinition]]]
OPTION_TYPES = {"enum", "set"}


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


class _Snapshot:
    """One load of definitions with the lookups built from it."""

    def __init__(self, definitions: list[FieldDefinition], names: Mapping[str, str]) -> None:
        self.by_code = {d.code: d for d in definitions}
        by_label: dict[str, list[FieldDefinition]] = {}
        for d in definitions:
            by_label.setdefault(_fold(d.name), []).append(d)
        self.code_for_name: dict[str, str] = {}
        # Pipedrive display names first (when unique), then configured names override them.
        for label, defs in by_label.items():
            custom = [d for d in defs if d.is_custom] or defs
            if len(custom) == 1:
                self.code_for_name[label] = custom[0].code
        for ours, ref in names.items():
            if ref in self.by_code:
                self.code_for_name[_fold(ours)] = ref
            elif _fold(ref) in self.code_for_name:
                self.code_for_name[_fold(ours)] = self.code_for_name[_fold(ref)]
        self.name_for_code: dict[str, str] = {d.code: d.name for d in definitions}
        for ours in names:
            code = self.code_for_name.get(_fold(ours))
            if code is not None:
                self.name_for_code[code] = ours


class CustomFields:
    """Resolver for one entity's custom fields (deal, organization, person or product)."""

    def __init__(
        self,
        loader: Loader,
        *,
        names: Mapping[str, str] | None = None,
        ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._loader = loader
        self._names = dict(names or {})
        self._ttl = ttl
        self._clock = clock
        self._snapshot: _Snapshot | None = None
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()
        self.loads = 0

    @classmethod
    def for_client(
        cls, client: PipedriveClient, entity: FieldEntity, *, names: Mapping[str, str] | None = None, ttl: float = 300.0
    ) -> CustomFields:
        async def load() -> list[FieldDefinition]:
            return [d async for d in client.iter_field_definitions(entity)]

        return cls(load, names=names, ttl=ttl)

    async def _current(self, *, force: bool = False) -> _Snapshot:
        """The definitions; concurrent callers share one load (the lock), a forced reload included."""
        loads_before = self.loads
        async with self._lock:
            stale = self._snapshot is None or self._clock() - self._loaded_at >= self._ttl
            if stale or (force and self.loads == loads_before):  # forced: unless one ran while we waited
                self._snapshot = _Snapshot(await self._loader(), self._names)
                self._loaded_at = self._clock()
                self.loads += 1
            assert self._snapshot is not None
            return self._snapshot

    async def _with_refresh(self, attempt: Callable[[_Snapshot], Any], *, loads_before: int | None = None) -> Any:
        """Run `attempt`; on an unknown key/name/label re-read definitions once and try again."""
        loads_before = self.loads if loads_before is None else loads_before
        snapshot = await self._current()
        try:
            return attempt(snapshot)
        except FieldResolutionError:
            if self.loads != loads_before:  # just loaded: a refresh would tell us nothing new
                raise
            return attempt(await self._current(force=True))

    async def code_for(self, name: str) -> str:
        """The hash key for a configured or display name (a known hash key maps to itself)."""

        def find(s: _Snapshot) -> str:
            return _code(s, name)

        result: str = await self._with_refresh(find)
        return result

    async def to_names(self, custom_fields: Mapping[str, Any]) -> dict[str, Any]:
        """Record `custom_fields` keyed by our names, option ids replaced by labels.

        A key still unknown after one refresh keeps its hash key (never dropped, never guessed).
        """
        loads_before = self.loads
        snapshot = await self._current()
        if any(code not in snapshot.by_code for code in custom_fields):
            await self._current(force=True)

        def convert(s: _Snapshot) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for code, value in custom_fields.items():
                definition = s.by_code.get(code)
                if definition is None:
                    out[code] = value
                    continue
                out[s.name_for_code.get(code, code)] = _labels(definition, value)
            return out

        result: dict[str, Any] = await self._with_refresh(convert, loads_before=loads_before)
        return result

    async def to_hashes(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """A write body's `custom_fields`: names -> hash keys, labels -> option ids."""

        def convert(s: _Snapshot) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for name, value in values.items():
                code = _code(s, name)
                out[code] = _ids(s.by_code[code], value)
            return out

        result: dict[str, Any] = await self._with_refresh(convert)
        return result

    async def value(self, custom_fields: Mapping[str, Any], name: str) -> Any:
        """One named field's value from a record, resolved (None when absent)."""
        code = await self.code_for(name)
        if code not in custom_fields:
            return None
        snapshot = await self._current()
        return _labels(snapshot.by_code[code], custom_fields[code])


def _code(s: _Snapshot, name: str) -> str:
    if name in s.by_code:
        return name
    code = s.code_for_name.get(_fold(name))
    if code is None:
        raise FieldResolutionError(f"custom field {name!r} not found", lines=[f"{name}: no such field"])
    return code


def _option_label(definition: FieldDefinition, raw: Any) -> str:
    if isinstance(raw, dict) and isinstance(raw.get("label"), str):  # include_option_labels shape
        return str(raw["label"])
    key = raw.get("id") if isinstance(raw, dict) else raw
    for option in definition.options:
        if option.id == key or str(option.id) == str(key):
            return option.label
    raise FieldResolutionError(
        f"custom field {definition.name!r}: option id {key!r} not defined",
        lines=[f"{definition.name}: unknown option id {key!r}"],
    )


def _labels(definition: FieldDefinition, value: Any) -> Any:
    if value is None or definition.field_type not in OPTION_TYPES:
        return value
    if definition.field_type == "set":
        items = value.split(",") if isinstance(value, str) else value  # v1 sends "12,13"
        if not isinstance(items, list):
            raise FieldResolutionError(f"custom field {definition.name!r}: set value is not a list")
        return [_option_label(definition, item) for item in items]
    return _option_label(definition, value)


def _option_id(definition: FieldDefinition, label: Any) -> int | str:
    for option in definition.options:
        if isinstance(label, str) and _fold(option.label) == _fold(label):
            return option.id
    for option in definition.options:  # an id given directly is accepted when it exists
        if not isinstance(label, bool) and option.id == label:
            return option.id
    raise FieldResolutionError(
        f"custom field {definition.name!r}: no option {label!r}",
        lines=[f"{definition.name}: unknown option {label!r}"],
    )


def _ids(definition: FieldDefinition, value: Any) -> Any:
    if value is None or definition.field_type not in OPTION_TYPES:
        return value
    if definition.field_type == "set":
        if not isinstance(value, list | tuple) or not value:
            # Pipedrive rejects [] for sets; clearing is done with null.
            raise FieldResolutionError(f"custom field {definition.name!r}: a set needs a non-empty list or None")
        return [_option_id(definition, item) for item in value]
    return _option_id(definition, value)
