"""What each flow is given: the clients, stores, mapping and settings it uses, and nothing more.

A flow never fetches its dependencies. The edge (`connector/runtime.py`: `order_deps()`,
`master_deps()`, ...) builds each set once per runtime, opening the API clients on first use, and the
handlers, the CLI and the local runner pass it in (docs/architecture.md, "Layers"). A test can build one
by hand with whatever clients it wants.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from connector.d365.client import D365Client
    from connector.flows.runner import JobRunner
    from connector.mapping.config import MappingConfig
    from connector.pipedrive.client import PipedriveClient
    from connector.pipedrive.fields import CustomFields
    from connector.queues import Queues
    from connector.state.store import StateStore


@dataclass
class ApiDeps:
    """What every flow that talks to both APIs uses: the mapping, the state, both clients, the organization
    custom fields (one definitions cache per runtime) and the job runner."""

    cfg: MappingConfig
    state: StateStore
    pipedrive: PipedriveClient
    d365: D365Client
    org_fields: CustomFields
    runner: JobRunner


@dataclass
class CustomerDeps(ApiDeps):
    """Customer match-or-create (`flows/customers.py`, `flows/customer_preview.py`)."""


@dataclass
class OrderDeps(CustomerDeps):
    """An order build, and its planning for `preview` and `reconcile`: a customer resolution's needs, plus
    the deal's custom fields (read on the deal, written back with the order number)."""

    deal_fields: CustomFields


@dataclass
class MasterDeps(ApiDeps):
    """One master push (`flows/masters.py`), also the diff's pushes."""

    search_lag: float  # PIPEDRIVE_SEARCH_LAG_SECONDS: how long a new record may be missing from a search
    # legal entity -> accounting currency read from D365 (`company_currency`), once per runtime
    currencies: dict[str, str | None] = field(default_factory=dict)


@dataclass
class DiffDeps:
    """The full master diff (`flows/master_diff.py`): a push's deps, the master queue and the diff's pace."""

    masters: MasterDeps
    queues: Queues
    inline_seconds: float  # MASTER_INLINE_SECONDS: pushing time before the rest goes to the queue
    concurrency: int  # MASTER_PUSH_CONCURRENCY: records pushed at once


@dataclass
class PollDeps:
    """The poll of won deals (`flows/poll.py`)."""

    state: StateStore
    pipedrive: PipedriveClient
    queues: Queues
    overlap_seconds: float  # POLL_OVERLAP_SECONDS: how far before the watermark each poll looks
    archived: bool = True  # POLL_ARCHIVED: list archived won deals too


@dataclass
class RequeueDeps:
    """Replays and the reconciler (`flows/replay.py`, `flows/reconciler.py`): jobs and queues, no API client."""

    state: StateStore
    queues: Queues
    stale_after: float  # JOB_STALE_SECONDS: a queued/running job older than this may be enqueued again
    grace: float  # RECONCILE_GRACE_SECONDS: how long a job may wait for its message before it is sent again
