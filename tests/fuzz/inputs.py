"""Strategies for hostile inputs: arbitrary JSON, real payloads mutated at the JSON and at the byte level,
and valid payloads with generated ids (which must still be accepted). Plus the oracles that say, from the
raw input alone and independently of the parsers under test, whether it may queue anything."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import strategies as st

from connector.dev.sandbox.d365.events import envelope
from tests.pipedrive.test_webhook_payloads import v1_won, v2_won

MAX_ID = 2**63 - 1
KNOWN_EVENTS = {"ReleasedProductChangedBusinessEvent": "ItemNumber", "CustomerChangedBusinessEvent": "CustomerAccount"}

# Any code point, lone surrogates included (json.dumps escapes them as \udXXX).
any_text = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, categories=None), max_size=40)
hostile_ints = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, MAX_ID, MAX_ID + 1, 2**64, -(2**63)]),
)
hostile_strings = st.one_of(
    any_text,
    st.sampled_from(["١٢٣", "１２３", "0101", " 101", "101 ", "+101", "1e3", "", "\x00", "\ud800", "won", "deal"]),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.builds(lambda n: "9" * n, st.integers(min_value=1, max_value=300)),
)
leaves = st.one_of(st.none(), st.booleans(), hostile_ints, st.floats(allow_nan=False), hostile_strings)
json_values = st.recursive(
    leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(any_text, inner, max_size=4)),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _apply(base: Any, path: tuple[Any, ...], op: str, value: Any) -> Any:
    doc = copy.deepcopy(base)
    *parents, last = path
    target = doc
    for step in parents:
        target = target[step]
    if op == "set":
        target[last] = value
    elif op == "delete":
        del target[last]
    elif op == "wrap":  # nest the value deeply
        for _ in range(60):
            value = [value]
        target[last] = value
    elif op == "add" and isinstance(target, dict):
        target[f"{last}_extra"] = value
    return doc


@st.composite
def json_mutation(draw: st.DrawFn, base: Any) -> bytes:
    """A real payload with one to three of its values replaced, removed, nested or joined by a stranger."""
    doc = base
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = _paths(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        doc = _apply(doc, path, draw(st.sampled_from(["set", "set", "delete", "wrap", "add"])), draw(json_values))
    return json.dumps(doc).encode()


@st.composite
def byte_mutation(draw: st.DrawFn, base: Any) -> bytes:
    """The payload's bytes with a few bytes flipped, dropped or inserted (truncation, junk, stray quotes)."""
    data = bytearray(json.dumps(base).encode())
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        at = draw(st.integers(min_value=0, max_value=max(0, len(data) - 1)))
        op = draw(st.sampled_from(["flip", "drop", "insert", "truncate"]))
        byte = draw(st.integers(min_value=0, max_value=255))
        if op == "flip" and data:
            data[at] = byte
        elif op == "drop" and data:
            del data[at]
        elif op == "insert":
            data.insert(at, byte)
        else:
            del data[at:]
    return bytes(data)


def duplicate_key(base: dict[str, Any]) -> bytes:
    """The payload with its first key repeated (json.dumps cannot make this, so build the text)."""
    text = json.dumps(base)
    key = next(iter(base))
    return ("{" + json.dumps(key) + ": null, " + text[1:]).encode()


def hostile(base: Any) -> st.SearchStrategy[bytes]:
    return st.one_of(
        json_mutation(base),
        byte_mutation(base),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=200),
        st.just(duplicate_key(base)) if isinstance(base, dict) and base else st.nothing(),
    )


# ---- the real payloads and valid generated ones --------------------------------------------------

deal_ids = st.integers(min_value=1, max_value=MAX_ID)


def webhook_bases() -> list[dict[str, Any]]:
    return [v2_won(entity_id="101"), v1_won()]


@st.composite
def valid_won_change(draw: st.DrawFn) -> tuple[int, bytes]:
    deal = draw(deal_ids)
    if draw(st.booleans()):
        payload = v2_won(entity_id=draw(st.sampled_from([str(deal), deal])))
    else:
        payload = v1_won()
        payload["meta"]["id"] = deal  # type: ignore[index]
        payload["current"]["id"] = deal  # type: ignore[index]
    return deal, json.dumps(payload).encode()


def event_bases() -> list[Any]:
    from tests.e2e.test_event_configuration import data_event

    product = envelope("ReleasedProductChangedBusinessEvent", "usmf", 5637144577, {"ItemNumber": "HP-1000"})
    customer = envelope("CustomerChangedBusinessEvent", "usmf", 5637144578, {"CustomerAccount": "US-001"})
    data = data_event("custcustomerv3entity", {"CustomerAccount": "US-001", "dataAreaId": "usmf"})
    return [product, [product, customer], data]


def replay_bases() -> list[dict[str, Any]]:
    return [{"deal_ids": [101, 102, 103]}, {"failed": True}, {"deal_ids": [104], "poison": False}]


# ---- oracles: may this raw input queue anything? ---------------------------------------------------


def _loads(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"), object_pairs_hook=_unique)
    except (ValueError, RecursionError):
        return None


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key")
    return dict(pairs)


def _is_id(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        return value.isascii() and value.isdigit() and not value.startswith("0") and 1 <= int(value) <= MAX_ID
    return isinstance(value, int) and 1 <= value <= MAX_ID


def may_queue_webhook(body: bytes) -> bool:
    """A change of a deal into won, with a usable id: the only webhook that may queue a build."""
    doc = _loads(body)
    if not isinstance(doc, dict) or not isinstance(doc.get("meta"), dict):
        return False
    meta = doc["meta"]
    if "current" in doc or "object" in meta:
        current, entity, action, deal = doc.get("current"), meta.get("object"), meta.get("action"), meta.get("id")
        changes = ("updated", "merged")
    else:
        current, entity, action, deal = doc.get("data"), meta.get("entity"), meta.get("action"), meta.get("entity_id")
        changes = ("change",)
    previous = doc.get("previous")
    return (
        entity == "deal"
        and action in changes
        and _is_id(deal)
        and isinstance(current, dict)
        and current.get("status") == "won"
        and isinstance(previous, dict)
        and isinstance(previous.get("status"), str)
        and previous["status"] != "won"
    )


def events_that_may_queue(body: bytes) -> int:
    """How many known change events with a non-empty key field the body holds (an upper bound)."""
    doc = _loads(body)
    items = doc if isinstance(doc, list) else [doc]
    count = 0
    for item in items:
        if not isinstance(item, dict):
            return 0
        if "InputParameters" in item:  # a data event (RemoteExecutionContext): at most one push each
            count += 1
            continue
        event_id = item.get("BusinessEventId")
        key_field = KNOWN_EVENTS.get(event_id) if isinstance(event_id, str) else None
        if key_field and isinstance(item.get(key_field), str) and item[key_field].strip():
            count += 1
    return count


def replay_may_queue(body: bytes) -> bool:
    doc = _loads(body if body else b"{}")
    if not isinstance(doc, dict) or set(doc) - {"deal_ids", "failed", "poison"}:
        return False
    ids = doc.get("deal_ids", [])
    flags_ok = all(isinstance(doc.get(f, False), bool) for f in ("failed", "poison"))
    ids_ok = isinstance(ids, list) and len(ids) <= 1000 and all(isinstance(i, int) and _is_id(i) for i in ids)
    return flags_ok and ids_ok and bool(ids or doc.get("failed") or doc.get("poison"))
