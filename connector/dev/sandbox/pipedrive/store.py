"""The simulator's in-memory data: entities in the v2 shape, field definitions, webhooks, reference data.

Every mutation goes through `create`/`update` so timestamps, derived fields (won_time, sums) and the
change events that drive webhooks are produced the same way for API calls and control-API changes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from . import records
from .customfields import FieldDef, check_custom_fields, make_code
from .envelope import bad_request, not_found
from .models import Seed
from .search_index import SEARCHABLE_TYPES, SearchIndex
from .writes import check_body

TABLES = ("deal", "organization", "person", "product", "deal_product")
FIELD_ENTITIES = ("deal", "organization", "person", "product")
LABELS = {"deal": "Deal", "organization": "Organization", "person": "Person", "product": "Product"}


@dataclass
class Event:
    """One entity change, the input of webhook delivery."""

    entity: str
    action: str  # create | change | delete
    entity_id: int
    data: dict[str, Any] | None
    previous: dict[str, Any] | None
    change_source: str  # api | app
    user_id: int


Listener = Callable[[Event], None]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Store:
    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self.clock = clock or (lambda: datetime.now(UTC))
        self.listeners: list[Listener] = []
        self.search = SearchIndex()
        self.clear()

    def clear(self) -> None:
        self.tables: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in TABLES}
        self.fields: dict[str, dict[str, FieldDef]] = {e: records.builtin_fields(e) for e in FIELD_ENTITIES}
        self.webhooks: dict[int, dict[str, Any]] = {}
        self.users: dict[int, dict[str, Any]] = {}
        self.pipelines: dict[int, dict[str, Any]] = {}
        self.stages: dict[int, dict[str, Any]] = {}
        self.currencies: dict[str, dict[str, Any]] = {}
        self.api_tokens: dict[str, int] = {}
        self.oauth_clients: dict[str, dict[str, str]] = {}
        self._ids: dict[str, int] = {}
        self.search.clear()

    def now(self) -> str:
        return iso(self.clock())

    def next_id(self, kind: str) -> int:
        self._ids[kind] = self._ids.get(kind, 0) + 1
        return self._ids[kind]

    def _claim_id(self, kind: str, wanted: int | None) -> int:
        if wanted is None:
            return self.next_id(kind)
        self._ids[kind] = max(self._ids.get(kind, 0), wanted)
        return wanted

    @property
    def default_user(self) -> dict[str, Any]:
        return next(iter(self.users.values())) if self.users else records.DEFAULT_USER

    # ---- seeding ------------------------------------------------------------------------------
    def load(self, seed: Seed) -> dict[str, int]:
        """Add a seed to the current data (reset first for a clean set); returns counts added."""
        user_id = seed.users[0].id if seed.users else self.default_user["id"]
        for user in seed.users:
            self.users[user.id] = user.model_dump()
        for token in seed.api_tokens:
            self.api_tokens[token] = user_id
        for client in seed.oauth_clients:
            self.oauth_clients[client.client_id] = client.model_dump()
        for currency in seed.currencies:
            cid = self.next_id("currency")
            self.currencies[currency.code] = {"id": cid, **currency.model_dump()}
        for pipeline in seed.pipelines:
            self.pipelines[pipeline.id] = {"id": pipeline.id, "name": pipeline.name}
            for order, stage in enumerate(pipeline.stages, start=1):
                self.stages[stage.id] = {
                    "id": stage.id,
                    "name": stage.name,
                    "pipeline_id": pipeline.id,
                    "order_nr": order,
                }
        for entity, defs in seed.fields.items():
            table = self.fields[entity]
            for fdef in defs:
                code = fdef.field_code or make_code(entity, fdef.field_name)
                options = [o.model_dump() for o in fdef.options] if fdef.options is not None else None
                table[code] = FieldDef(
                    code=code,
                    name=fdef.field_name,
                    field_type=fdef.field_type,
                    id=self.next_id("field"),
                    options=options,
                    order_nr=len(table),
                    add_time=self.now(),
                )
        for org in seed.organizations:
            body = org.model_dump(exclude={"id", "custom_fields"}, exclude_none=True)
            self._insert("organization", org.id, body, self._seed_cf("organization", org.custom_fields), user_id)
        for person in seed.persons:
            body = person.model_dump(exclude={"id", "custom_fields"}, exclude_none=True)
            self._insert("person", person.id, body, self._seed_cf("person", person.custom_fields), user_id)
        for product in seed.products:
            body = product.model_dump(exclude={"id", "custom_fields"}, exclude_none=True)
            self._insert("product", product.id, body, self._seed_cf("product", product.custom_fields), user_id)
        for deal in seed.deals:
            body = deal.model_dump(exclude={"id", "custom_fields", "products"}, exclude_none=True)
            created = self._insert("deal", deal.id, body, self._seed_cf("deal", deal.custom_fields), user_id)
            for line in deal.products:
                self.add_deal_product(created["id"], line.model_dump(), emit=False)
        return {
            "organizations": len(seed.organizations),
            "persons": len(seed.persons),
            "products": len(seed.products),
            "deals": len(seed.deals),
        }

    def _seed_cf(self, entity: str, values: dict[str, Any]) -> dict[str, Any]:
        """Seeds may name custom fields by hash or by field name, for readable test data."""
        by_name = {f.name: f.code for f in self.fields[entity].values() if f.custom}
        keyed = {by_name.get(key, key): value for key, value in values.items()}
        return check_custom_fields(self.fields[entity], keyed)

    def _insert(
        self, entity: str, wanted: int | None, body: dict[str, Any], cf: dict[str, Any], user_id: int
    ) -> dict[str, Any]:
        if wanted is not None and wanted in self.tables[entity]:
            raise bad_request(f"{entity} id {wanted} already exists in the seed")
        record_id = self._claim_id(entity, wanted)
        now = self.now()
        if entity == "deal" and body.get("stage_id") in self.stages and "pipeline_id" not in body:
            body = {**body, "pipeline_id": self.stages[body["stage_id"]]["pipeline_id"]}
        custom = {code: None for code, f in self.fields[entity].items() if f.custom} if entity != "deal_product" else {}
        custom.update(cf)
        record = records.new_record(entity, record_id, body, custom, now, user_id, self.default_user)
        self.tables[entity][record_id] = record
        self.search.put(entity, record, self.searchable(entity))
        return record

    # ---- reads ----------------------------------------------------------------------------------
    def get(self, entity: str, record_id: int) -> dict[str, Any]:
        record = self.tables[entity].get(record_id)
        if record is None:
            raise not_found(LABELS.get(entity, "Item"))
        return record

    def searchable(self, entity: str) -> set[str]:
        """Codes of the entity's custom fields the Search API looks into (by field type)."""
        return {c for c, f in self.fields.get(entity, {}).items() if f.custom and f.field_type in SEARCHABLE_TYPES}

    def visible(self, entity: str) -> list[dict[str, Any]]:
        return [r for r in self.tables[entity].values() if not r.get("is_deleted")]

    def deal_products(self, deal_id: int) -> list[dict[str, Any]]:
        return [r for r in self.tables["deal_product"].values() if r["deal_id"] == deal_id]

    # ---- writes ---------------------------------------------------------------------------------
    def create(self, entity: str, body: Any, *, source: str = "api") -> dict[str, Any]:
        values = check_body(entity, body, create=True)
        cf = check_custom_fields(self.fields[entity], values.pop("custom_fields", {}))
        self._check_refs(values)
        user_id = self.default_user["id"]
        record = self._insert(entity, None, values, cf, user_id)
        self._emit(Event(entity, "create", record["id"], copy.deepcopy(record), None, source, user_id))
        return record

    def update(self, entity: str, record_id: int, body: Any, *, source: str = "api") -> dict[str, Any]:
        record = self.get(entity, record_id)
        if record.get("is_deleted"):
            raise not_found(LABELS[entity])
        values = check_body(entity, body, create=False)
        cf = check_custom_fields(self.fields[entity], values.pop("custom_fields", {}))
        self._check_refs(values)
        before = copy.deepcopy(record)
        if entity == "deal":
            values = records.deal_status_effects(record, values, self.clock())
            if values.get("is_archived") and not record.get("is_archived") and not values.get("archive_time"):
                values["archive_time"] = self.now()  # archiving stamps the moment, as the app does
            if values.get("stage_id") in self.stages and "pipeline_id" not in values:
                values["pipeline_id"] = self.stages[values["stage_id"]]["pipeline_id"]  # a stage implies its pipeline
        if entity == "product" and "prices" in values:
            values["prices"] = [{"product_id": record_id, **p} for p in values["prices"]]
        record.update(values)
        record["custom_fields"] = {**record["custom_fields"], **cf}
        previous = records.changed(before, record)
        if previous:
            self.search.put(entity, record, self.searchable(entity))
        if previous:
            record["update_time"] = self.now()
            if "stage_id" in previous:
                record["stage_change_time"] = record["update_time"]
            user_id = self.default_user["id"]
            self._emit(Event(entity, "change", record_id, copy.deepcopy(record), previous, source, user_id))
        return record

    def delete(self, entity: str, record_id: int) -> None:
        record = self.get(entity, record_id)
        if record.get("is_deleted"):
            raise not_found(LABELS[entity])
        before = copy.deepcopy(record)
        record["is_deleted"] = True
        record["update_time"] = self.now()
        user_id = self.default_user["id"]
        self._emit(Event(entity, "delete", record_id, None, before, "api", user_id))

    def add_deal_product(self, deal_id: int, body: Any, *, emit: bool = True) -> dict[str, Any]:
        deal = self.get("deal", deal_id)
        values = check_body("deal_product", body, create=True)
        product = self.get("product", values["product_id"])
        attachment_id = self.next_id("deal_product")
        now = self.now()
        line = records.new_deal_product(attachment_id, deal, product, values, now, len(self.deal_products(deal_id)))
        self.tables["deal_product"][attachment_id] = line
        # A deal with products takes its value from them (enabled lines; deal-level discounts are not simulated).
        deal["value"] = round(sum(p["sum"] for p in self.deal_products(deal_id) if p.get("is_enabled", True)), 2)
        return line

    def _check_refs(self, values: dict[str, Any]) -> None:
        for key, table in (("org_id", "organization"), ("person_id", "person")):
            if values.get(key) is not None and values[key] not in self.tables[table]:
                raise bad_request(f"{key}: {LABELS[table]} {values[key]} does not exist")
        if values.get("stage_id") is not None and self.stages and values["stage_id"] not in self.stages:
            raise bad_request(f"stage_id: stage {values['stage_id']} does not exist")

    def _emit(self, event: Event) -> None:
        for listener in list(self.listeners):
            listener(event)
