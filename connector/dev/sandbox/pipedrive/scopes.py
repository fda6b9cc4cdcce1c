"""Which OAuth scopes allow each operation the simulator serves: the `security` (oauth2) of the operation in
SPEC-v1 / SPEC-v2, copied entry by entry (tests/sandbox_pipedrive/test_scopes.py checks them against the specs).

A token passes when it holds any one scope of its operation's set. `base` is always granted ("base" is
always included, Pipedrive's scope docs). Nothing else implies anything: `admin` allows exactly the
operations that list it. A served route with no entry is refused, never allowed.
"""

from __future__ import annotations

V1_PREFIXES = ("/v1", "/api/v1")  # v1 answers on both prefixes (migration guide): the same operation
# v1 entity routes that left SPEC-v1 in 2026; the simulator answers 410 on them whatever the credential.
REMOVED_V1 = ("deals", "persons", "organizations", "products", "activities", "pipelines", "stages", "itemSearch")

_DEALS_READ = frozenset({"deals:read", "deals:full"})
_DEALS_FULL = frozenset({"deals:full"})
_CONTACTS_READ = frozenset({"contacts:read", "contacts:full"})
_CONTACTS_FULL = frozenset({"contacts:full"})
_PRODUCTS_READ = frozenset({"products:read", "products:full"})
_PRODUCTS_FULL = frozenset({"products:full"})
_DEAL_PRODUCTS_READ = _DEALS_READ | _PRODUCTS_READ
_DEAL_FIELDS = _DEALS_READ | {"deal-fields:full", "admin"}
_CONTACT_FIELDS = _CONTACTS_READ | {"contact-fields:full", "admin"}
_PRODUCT_FIELDS = _PRODUCTS_READ | {"product-fields:full"}  # no `admin` here, unlike deal/contact fields
_ADMIN = frozenset({"admin"})
_BASE = frozenset({"base"})

_V2: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/api/v2/deals"): _DEALS_READ,
    ("POST", "/api/v2/deals"): _DEALS_FULL,
    ("GET", "/api/v2/deals/archived"): _DEALS_READ,
    ("GET", "/api/v2/deals/products"): _DEAL_PRODUCTS_READ,
    ("GET", "/api/v2/deals/{id}"): _DEALS_READ,
    ("PATCH", "/api/v2/deals/{id}"): _DEALS_FULL,
    ("DELETE", "/api/v2/deals/{id}"): _DEALS_FULL,
    ("GET", "/api/v2/deals/{id}/products"): _DEAL_PRODUCTS_READ,
    ("POST", "/api/v2/deals/{id}/products"): _DEALS_FULL | _PRODUCTS_FULL,
    ("GET", "/api/v2/organizations"): _CONTACTS_READ,
    ("POST", "/api/v2/organizations"): _CONTACTS_FULL,
    ("GET", "/api/v2/organizations/search"): _CONTACTS_READ | {"search:read"},
    ("GET", "/api/v2/organizations/{id}"): _CONTACTS_READ,
    ("PATCH", "/api/v2/organizations/{id}"): _CONTACTS_FULL,
    ("DELETE", "/api/v2/organizations/{id}"): _CONTACTS_FULL,
    ("GET", "/api/v2/persons"): _CONTACTS_READ,
    ("POST", "/api/v2/persons"): _CONTACTS_FULL,
    ("GET", "/api/v2/persons/{id}"): _CONTACTS_READ,
    ("PATCH", "/api/v2/persons/{id}"): _CONTACTS_FULL,
    ("DELETE", "/api/v2/persons/{id}"): _CONTACTS_FULL,
    ("GET", "/api/v2/products"): _PRODUCTS_READ,
    ("POST", "/api/v2/products"): _PRODUCTS_FULL,
    ("GET", "/api/v2/products/search"): _PRODUCTS_READ | {"search:read"},
    ("GET", "/api/v2/products/{id}"): _PRODUCTS_READ,
    ("PATCH", "/api/v2/products/{id}"): _PRODUCTS_FULL,
    ("DELETE", "/api/v2/products/{id}"): _PRODUCTS_FULL,
    ("GET", "/api/v2/dealFields"): _DEAL_FIELDS,
    ("GET", "/api/v2/dealFields/{field_code}"): _DEAL_FIELDS,
    ("GET", "/api/v2/organizationFields"): _CONTACT_FIELDS,
    ("GET", "/api/v2/organizationFields/{field_code}"): _CONTACT_FIELDS,
    ("GET", "/api/v2/personFields"): _CONTACT_FIELDS,
    ("GET", "/api/v2/personFields/{field_code}"): _CONTACT_FIELDS,
    ("GET", "/api/v2/productFields"): _PRODUCT_FIELDS,
    ("GET", "/api/v2/productFields/{field_code}"): _PRODUCT_FIELDS,
}

_V1: dict[tuple[str, str], frozenset[str]] = {  # paths after the prefix
    ("GET", "/webhooks"): _ADMIN,
    ("POST", "/webhooks"): _ADMIN,
    ("DELETE", "/webhooks/{id}"): _ADMIN,
    ("GET", "/users/me"): _BASE,
    ("GET", "/currencies"): _BASE,
    ("GET", "/dealFields"): _DEAL_FIELDS,
    ("GET", "/dealFields/{id}"): _DEAL_FIELDS,
    ("GET", "/organizationFields"): _CONTACT_FIELDS,
    ("GET", "/organizationFields/{id}"): _CONTACT_FIELDS,
    ("GET", "/personFields"): _CONTACT_FIELDS,
    ("GET", "/personFields/{id}"): _CONTACT_FIELDS,
    ("GET", "/productFields"): _PRODUCT_FIELDS,
    ("GET", "/productFields/{id}"): _PRODUCT_FIELDS,
}

# (method, route as aiohttp names it) -> the scopes any one of which allows the operation.
SCOPES: dict[tuple[str, str], frozenset[str]] = {
    **_V2,
    **{(method, prefix + path): scopes for (method, path), scopes in _V1.items() for prefix in V1_PREFIXES},
}
# Routes that answer 410 Gone to every credential: no scope check stands before that refusal.
GONE: frozenset[str] = frozenset(
    f"{prefix}/{entity}{tail}" for prefix in V1_PREFIXES for entity in REMOVED_V1 for tail in ("", "/{tail}")
)


def missing_entry(method: str, route: str) -> bool:
    return route not in GONE and (_method(method), route) not in SCOPES


def allowed(method: str, route: str, granted: frozenset[str]) -> bool:
    """Whether a token holding `granted` may call this route; `base` counts as always granted."""
    if route in GONE:
        return True  # the route's own answer (410) is the refusal
    return bool(SCOPES.get((_method(method), route), frozenset()) & (granted | _BASE))


def _method(method: str) -> str:
    return "GET" if method == "HEAD" else method  # aiohttp serves HEAD with every GET route
