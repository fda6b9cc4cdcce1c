"""CustomFields resolution rules with an in-memory definition loader (HTTP round-trip is in test_client_sim)."""

from __future__ import annotations

import pytest

from connector.pipedrive.errors import FieldResolutionError
from connector.pipedrive.fields import CustomFields
from connector.pipedrive.models import FieldDefinition

ORDER_NO = "a" * 39 + "B"  # mixed case on purpose: hash keys are used verbatim
REGION = "c" * 40
TAGS = "d" * 40
BUDGET = "e" * 40


def defs(*extra: FieldDefinition) -> list[FieldDefinition]:
    return [
        FieldDefinition(field_code="title", field_name="Title", field_type="varchar", is_custom_field=False),
        FieldDefinition(field_code=ORDER_NO, field_name="D365 order", field_type="varchar", is_custom_field=True),
        FieldDefinition(
            field_code=REGION,
            field_name="Region",
            field_type="enum",
            is_custom_field=True,
            options=[{"id": 10, "label": "North"}, {"id": 11, "label": "South"}],
        ),
        FieldDefinition(
            field_code=TAGS,
            field_name="Tags",
            field_type="set",
            is_custom_field=True,
            options=[{"id": 20, "label": "VIP"}, {"id": 21, "label": "Export"}],
        ),
        FieldDefinition(field_code=BUDGET, field_name="Budget", field_type="monetary", is_custom_field=True),
        *extra,
    ]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Loader:
    def __init__(self, *batches: list[FieldDefinition]) -> None:
        self.batches = list(batches)
        self.calls = 0

    async def __call__(self) -> list[FieldDefinition]:
        self.calls += 1
        return self.batches[min(self.calls, len(self.batches)) - 1]


async def test_round_trip_through_names_and_labels() -> None:
    resolver = CustomFields(Loader(defs()), names={"order_number": ORDER_NO, "region": "Region"})
    raw = {ORDER_NO: "SO-1", REGION: 11, TAGS: [20, 21], BUDGET: {"value": 5, "currency": "EUR"}}
    named = await resolver.to_names(raw)
    assert named == {"order_number": "SO-1", "region": "South", "Tags": ["VIP", "Export"], "Budget": raw[BUDGET]}
    assert await resolver.to_hashes(named) == raw
    assert await resolver.code_for("ORDER_NUMBER") == ORDER_NO
    assert await resolver.value(raw, "region") == "South"


async def test_include_option_labels_and_v1_shapes_are_understood() -> None:
    resolver = CustomFields(Loader(defs()))
    named = await resolver.to_names({REGION: {"id": 10, "label": "North"}, TAGS: "20,21"})
    assert named == {"Region": "North", "Tags": ["VIP", "Export"]}


async def test_unknown_key_triggers_one_refresh_and_keeps_raw_key_if_still_unknown() -> None:
    new = FieldDefinition(field_code="f" * 40, field_name="New field", field_type="varchar", is_custom_field=True)
    loader = Loader(defs(), defs(new))
    resolver = CustomFields(loader)
    assert await resolver.to_names({ORDER_NO: "x"}) == {"D365 order": "x"}
    assert loader.calls == 1
    assert await resolver.to_names({"f" * 40: "y"}) == {"New field": "y"}
    assert loader.calls == 2
    ghost = "0" * 40
    assert await resolver.to_names({ghost: 1}) == {ghost: 1}
    assert loader.calls == 3


async def test_unknown_names_and_labels_raise_after_one_refresh() -> None:
    loader = Loader(defs())
    resolver = CustomFields(loader)
    await resolver.to_names({})
    with pytest.raises(FieldResolutionError, match="nope"):
        await resolver.to_hashes({"nope": 1})
    assert loader.calls == 2
    with pytest.raises(FieldResolutionError, match="West"):
        await resolver.to_hashes({"Region": "West"})
    with pytest.raises(FieldResolutionError, match="non-empty"):
        await resolver.to_hashes({"Tags": []})
    with pytest.raises(FieldResolutionError, match="option id 99"):
        await resolver.to_names({REGION: 99})


async def test_definitions_are_cached_for_the_ttl() -> None:
    clock = Clock()
    loader = Loader(defs())
    resolver = CustomFields(loader, ttl=60, clock=clock)
    await resolver.to_names({ORDER_NO: "a"})
    clock.now = 59
    await resolver.to_names({ORDER_NO: "b"})
    assert loader.calls == 1
    clock.now = 61
    await resolver.to_names({ORDER_NO: "c"})
    assert loader.calls == 2


async def test_unknown_key_and_unknown_option_cost_one_refresh_not_two() -> None:
    loader = Loader(defs())
    resolver = CustomFields(loader)
    await resolver.to_names({})
    with pytest.raises(FieldResolutionError):
        await resolver.to_names({"0" * 40: 1, REGION: 99})
    assert loader.calls == 2


async def test_concurrent_first_uses_share_one_load() -> None:
    import asyncio

    calls = 0
    release = asyncio.Event()

    async def load() -> list[FieldDefinition]:
        nonlocal calls
        calls += 1
        await release.wait()  # every caller arrives while the first load is still in flight
        return defs()

    fields = CustomFields(load)
    waiting = [asyncio.ensure_future(fields.code_for("D365 order")) for _ in range(8)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*waiting) == [ORDER_NO] * 8
    assert calls == 1 and fields.loads == 1
