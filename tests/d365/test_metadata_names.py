"""Every entity set, key and property name the D365 CLIENT uses exists in the recorded F&O metadata.

The metadata is read at run time from the shared research folder beside the checkout
(tests/fixtures/reference.py), or the checked-in `schema.json` generated from it where that is absent.
The schema logic lives in one place, the simulator's `connector.dev.sandbox.d365.metadata`; here we
feed it the client's names (models + names used in filters/keys/expand), built from the reference
files themselves so a misspelled or invented field fails the build.
"""

from __future__ import annotations

import pytest

from connector.d365.models import ENTITY_MODELS, D365Entity, names_used
from tests.fixtures.reference import D365_REFERENCE as REF

metadata = pytest.importorskip("connector.dev.sandbox.d365.metadata")


@pytest.fixture(scope="module")
def schema():  # type: ignore[no-untyped-def]
    if not REF.is_dir():
        return metadata.load_schema()
    return metadata.build_from_reference(REF)


def test_every_client_name_is_in_the_metadata(schema) -> None:  # type: ignore[no-untyped-def]
    problems = []
    for entity_set, names in sorted(names_used().items()):
        entity = schema.entity_sets.get(entity_set)
        if entity is None:
            problems.append(f"unknown entity set {entity_set}")
            continue
        known = set(entity.properties) | set(entity.navigation)
        problems += [f"{entity_set}.{n}" for n in sorted(names - known)]
    assert problems == []


def test_model_keys_match_the_metadata(schema) -> None:  # type: ignore[no-untyped-def]
    for model in ENTITY_MODELS:
        if issubclass(model, D365Entity):
            assert tuple(model.key_fields) == tuple(schema.entity_sets[model.entity_set].key), model.__name__


def test_customer_names_are_in_the_verbatim_metadata_excerpt() -> None:
    if not REF.is_dir():
        pytest.skip("reference folder not present")
    verbatim = metadata.verbatim_customer_properties(REF)
    assert sorted(names_used()["CustomersV3"] - verbatim) == []


def test_the_check_catches_an_invented_field(schema) -> None:  # type: ignore[no-untyped-def]
    assert "Name" not in schema.entity_sets["CustomersV3"].properties  # CustomersV3 has OrganizationName only
    assert "ProductName" not in schema.entity_sets["ReleasedProductsV2"].properties
