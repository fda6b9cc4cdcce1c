"""The one source of allowed entity sets, keys, properties and enums for the D365 simulator.

`schema.json` (checked in beside this module) is generated from the reference metadata in
`shared/reference/d365/` by `build_from_reference`; a test regenerates it and fails when they differ,
so a misspelled or invented field cannot reach the simulator (or, via `tests/sandbox_d365/`, the client).
The simulator loads only the checked-in file, so it runs where the reference folder is absent.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict

SCHEMA_PATH = Path(__file__).with_name("schema.json")
NAMESPACE = "Microsoft.Dynamics.DataEntities"

# Entity set -> (entity type name, AOT entity name used in Infolog texts). The AOT names come from
# the reference (d365-fo-odata.md section 2 table); type names are the singular set names.
ENTITY_SETS: dict[str, tuple[str, str]] = {
    "CustomersV3": ("CustomerV3", "CustCustomerV3Entity"),
    "CustomerGroups": ("CustomerGroup", "CustCustomerGroupEntity"),
    "Currencies": ("Currency", "CurrencyEntity"),
    "LegalEntities": ("LegalEntity", "OMLegalEntity"),
    "ReleasedProductsV2": ("ReleasedProductV2", "EcoResReleasedProductV2Entity"),
    "ReleasedProductCreationsV2": ("ReleasedProductCreationV2", "EcoResReleasedProductCreationV2Entity"),
    "SalesOrderHeadersV2": ("SalesOrderHeaderV2", "SalesOrderHeaderV2Entity"),
    "SalesOrderLines": ("SalesOrderLine", "SalesOrderLineV2Entity"),
}

EDM_TYPES = {"Edm.String", "Edm.Decimal", "Edm.DateTimeOffset", "Edm.Int32", "Edm.Int64", "Edm.Guid"}


class Prop(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: str  # "Edm.String" ... or an enum type short name, e.g. "NoYes"
    nullable: bool = True

    @property
    def is_enum(self) -> bool:
        return self.type not in EDM_TYPES


class EntitySet(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    entity_type: str
    aot_name: str
    key: tuple[str, ...]
    properties: dict[str, Prop]
    navigation: tuple[str, ...] = ()
    # Values a new record gets for fields the caller did not set, taken from recorded real responses
    # where one exists (e.g. PartyType "Organization", InvoiceAddress "InvoiceAccount").
    recorded_defaults: dict[str, str | int | float | None] = {}

    @property
    def company_specific(self) -> bool:
        return "dataAreaId" in self.properties


class Schema(BaseModel):
    model_config = ConfigDict(frozen=True)

    entity_sets: dict[str, EntitySet]
    enums: dict[str, dict[str, int]]  # enum type -> member name -> value, in value order

    def enum_members(self, enum_type: str) -> tuple[str, ...]:
        return tuple(self.enums.get(enum_type, {}))


@cache
def load_schema() -> Schema:
    return Schema.model_validate_json(SCHEMA_PATH.read_text(encoding="utf-8"))


def _parse_reconstructed(path: Path) -> tuple[tuple[str, ...], dict[str, Prop], tuple[str, ...]]:
    root = ET.parse(path).getroot()  # noqa: S314 - trusted, checked-in reference file
    ns = {"r": "urn:reconstructed:odata-csdl-like"}
    key = tuple(ref.attrib["Name"] for ref in root.findall("r:Key/r:PropertyRef", ns))
    props: dict[str, Prop] = {}
    for el in root.findall("r:Property", ns):
        typ = el.attrib["Type"]
        if typ.startswith(NAMESPACE + "."):
            typ = typ[len(NAMESPACE) + 1 :]
        props[el.attrib["Name"]] = Prop(type=typ, nullable=el.attrib.get("Nullable", "true") != "false")
    nav = tuple(el.attrib["Name"] for el in root.findall("r:NavigationProperty", ns))
    return key, props, nav


def build_from_reference(ref_dir: Path) -> Schema:
    """Build the schema from the reference files (used by the test and to regenerate schema.json)."""
    sets: dict[str, EntitySet] = {}
    for name, (entity_type, aot) in ENTITY_SETS.items():
        key, props, nav = _parse_reconstructed(ref_dir / f"{name}.reconstructed.xml")
        sets[name] = EntitySet(
            name=name, entity_type=entity_type, aot_name=aot, key=key, properties=props, navigation=nav
        )
    raw = json.loads((ref_dir / "enums.reconstructed-from-sap-sdk.json").read_text(encoding="utf-8"))
    used = {p.type for s in sets.values() for p in s.properties.values() if p.is_enum}
    enums = {
        name: {m["name"]: int(m["value"]) for m in sorted(members, key=lambda m: int(m["value"]))}
        for name, members in sorted(raw.items())
        if name in used
    }
    samples = _recorded_records(ref_dir / "samples" / "nango-recorded-fno-responses.json")
    for name, entity in sets.items():
        defaults = _empty_values(samples.get(RECORDED_SAMPLE.get(name, name), {}), entity, enums)
        sets[name] = entity.model_copy(update={"recorded_defaults": defaults})
    return Schema(entity_sets=sets, enums=enums)


# Which recorded entity set stands in for one that has no recording (same fields where they overlap).
RECORDED_SAMPLE = {"SalesOrderLines": "SalesOrderLinesV3", "ReleasedProductCreationsV2": "ReleasedProductsV2"}


def _recorded_records(path: Path) -> dict[str, dict[str, object]]:
    """First recorded record per entity set, from the recorded responses file."""
    data = json.loads(path.read_text(encoding="utf-8"))
    found: dict[str, dict[str, object]] = {}
    for label, item in data.items():
        if label.startswith("_") or not isinstance(item.get("response"), dict):
            continue
        match = re.search(r"/data/(\w+)", label)
        if not match:
            continue
        body = item["response"]
        record = body["value"][0] if "value" in body else body
        found.setdefault(match.group(1), record)
    return found


def _empty_values(
    record: dict[str, object], entity: EntitySet, enums: dict[str, dict[str, int]]
) -> dict[str, str | int | float | None]:
    """Keep only recorded values that are defaults, not data: enum members, nulls, zeros, empty dates."""
    out: dict[str, str | int | float | None] = {}
    for field, value in record.items():
        prop = entity.properties.get(field)
        if prop is None or field in entity.key or not isinstance(value, str | None):
            continue
        empty_date = prop.type == "Edm.DateTimeOffset" and value is not None and value.startswith("1900-01-01")
        if empty_date or (prop.is_enum and (value is None or value in enums.get(prop.type, {}))):
            out[field] = value
    return out


def verbatim_customer_properties(ref_dir: Path) -> set[str]:
    """Property names of the verbatim CustomerV3 $metadata excerpt (a second, independent check)."""
    text = (ref_dir / "CustomerV3.metadata-excerpt.xml").read_text(encoding="utf-8")
    entity = re.search(r'<EntityType Name="CustomerV3">(.*?)</EntityType>', text, re.S)
    assert entity is not None
    return set(re.findall(r'<Property Name="([^"]+)"', entity.group(1)))


def to_csdl(schema: Schema) -> str:
    """`/data/$metadata`: a CSDL document for the simulated sets (keys, property types, enums)."""
    from xml.sax.saxutils import quoteattr

    out = ['<?xml version="1.0" encoding="utf-8"?>',
           '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx"><edmx:DataServices>',
           f'<Schema Namespace="{NAMESPACE}" xmlns="http://docs.oasis-open.org/odata/ns/edm">']  # fmt: skip
    for name, members in schema.enums.items():
        out.append(f"<EnumType Name={quoteattr(name)}>")
        out += [f'<Member Name={quoteattr(m)} Value="{i}" />' for i, m in enumerate(members)]
        out.append("</EnumType>")
    for entity in schema.entity_sets.values():
        out.append(f"<EntityType Name={quoteattr(entity.entity_type)}><Key>")
        out += [f"<PropertyRef Name={quoteattr(k)} />" for k in entity.key]
        out.append("</Key>")
        for prop_name, prop in entity.properties.items():
            typ = f"{NAMESPACE}.{prop.type}" if prop.is_enum else prop.type
            nullable = "" if prop.nullable else ' Nullable="false"'
            out.append(f"<Property Name={quoteattr(prop_name)} Type={quoteattr(typ)}{nullable} />")
        out.append("</EntityType>")
    out.append('<EntityContainer Name="Resources">')
    out += [
        f"<EntitySet Name={quoteattr(e.name)} EntityType={quoteattr(NAMESPACE + '.' + e.entity_type)} />"
        for e in schema.entity_sets.values()
    ]
    out.append("</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>")
    return "\n".join(out)


def main() -> None:  # pragma: no cover - maintenance command
    """Regenerate schema.json: python -m connector.dev.sandbox.d365.metadata REF_DIR."""
    import sys

    schema = build_from_reference(Path(sys.argv[1]))
    SCHEMA_PATH.write_text(schema.model_dump_json(indent=None) + "\n", encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover
    main()
