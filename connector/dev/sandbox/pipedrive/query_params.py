"""The query parameters each v2 operation takes, and the refusal of any other.

v2 validates requests against its schema (ERR_SCHEMA_VALIDATION_FAILED, "Parameter '…' is not allowed
for this request" for bodies: client-nodejs#651). Whether it also refuses an unknown query parameter is
UNCONFIRMED, so the simulator takes the strict reading: a parameter an operation does not list in
SPEC-v2 is refused, never silently ignored (a client relying on `start=`, `sort=` or `api_token=` would
otherwise pass here and page or filter wrongly live). Parameters SPEC-v2 lists that the simulator does
not implement are refused too, naming the gap, so a test never passes on a filter that was ignored.
tests/sandbox_pipedrive/test_query_params.py checks every name below against SPEC-v2.
"""

from __future__ import annotations

from collections.abc import Iterable

from .envelope import ApiError, bad_request, error_body

PAGE = ("limit", "cursor", "sort_by", "sort_direction")
SHAPE = ("custom_fields", "include_option_labels")
CHANGED = ("updated_since", "updated_until")
LIST_FILTERS = ("ids", "owner_id")
SEARCH = ("term", "fields", "exact_match", "limit", "cursor")

# (method, route as aiohttp names it) -> the query parameters the simulator serves for it.
V2_QUERY: dict[tuple[str, str], frozenset[str]] = {
    key: frozenset(names)
    for key, names in {
        ("GET", "/api/v2/deals"): (*PAGE, *SHAPE, *CHANGED, *LIST_FILTERS, "person_id", "org_id", "pipeline_id",
                                   "stage_id", "status"),
        ("GET", "/api/v2/deals/archived"): (*PAGE, *CHANGED, *LIST_FILTERS, "custom_fields", "person_id", "org_id",
                                            "pipeline_id", "stage_id", "status"),
        ("GET", "/api/v2/deals/{id}"): SHAPE,
        ("GET", "/api/v2/deals/products"): (*PAGE, "deal_ids"),
        ("GET", "/api/v2/deals/{id}/products"): PAGE,
        ("GET", "/api/v2/organizations"): (*PAGE, *SHAPE, *CHANGED, *LIST_FILTERS),
        ("GET", "/api/v2/organizations/{id}"): SHAPE,
        ("GET", "/api/v2/persons"): (*PAGE, *SHAPE, *CHANGED, *LIST_FILTERS, "org_id"),
        ("GET", "/api/v2/persons/{id}"): SHAPE,
        ("GET", "/api/v2/products"): (*PAGE, *LIST_FILTERS, "updated_since", "custom_fields"),
        ("GET", "/api/v2/products/{id}"): (),
        ("GET", "/api/v2/products/search"): SEARCH,
        ("GET", "/api/v2/organizations/search"): SEARCH,
        **{("GET", f"/api/v2/{e}Fields"): ("limit", "cursor") for e in ("deal", "organization", "person", "product")},
        **{("GET", f"/api/v2/{e}Fields/{{field_code}}"): () for e in ("deal", "organization", "person", "product")},
    }.items()
}  # fmt: skip


# Parameters SPEC-v2 documents on some of the operations above that the simulator does not implement.
NOT_SIMULATED = frozenset({"filter_id", "include_fields", "include_labels", "deal_id"})


def check_query(method: str, route: str, given: Iterable[str]) -> None:
    """Raise the 400 for the first parameter `route` does not take (writes and DELETEs take none)."""
    if not route.startswith("/api/v2/"):
        return  # v1 keeps its older rules (routes_v1.py)
    allowed = V2_QUERY.get((method, route), frozenset())
    for name in given:
        if name in allowed:
            continue
        if name in NOT_SIMULATED:
            raise ApiError(400, error_body(f"The sandbox does not implement the query parameter '{name}' of {route}"))
        raise bad_request(f"{name}: Parameter '{name}' is not allowed for this request")
