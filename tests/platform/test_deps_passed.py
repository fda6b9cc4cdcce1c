"""Dependencies are passed, not fetched: a flow takes the small deps object it uses (connector/flows/deps.py)
and never sees the runtime; the runtime (the edge) builds each deps object once and shares its clients."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from connector.runtime import Runtime
from connector.secret_names import SecretNames
from connector.settings import load_settings
from tests.fixtures.platform import BASE_ENV

ROOT = Path(__file__).resolve().parents[2]
FLOWS = sorted(
    [*(ROOT / "connector" / "flows").glob("*.py"), *(ROOT / "connector" / "reconcile").glob("*.py"),
     ROOT / "connector" / "preview.py"]
)  # fmt: skip
EDGE_NAMES = {"Runtime", "get_runtime", "close_runtime"}


def runtime_uses(path: Path) -> list[str]:
    """`line: what` for every import of connector.runtime and every use of its names, TYPE_CHECKING included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            names = {alias.name for alias in node.names}
            if node.module == "connector.runtime" or (node.module == "connector" and "runtime" in names):
                found.append(f"{node.lineno}: from {node.module} import {', '.join(sorted(names))}")
        elif isinstance(node, ast.Import):
            found += [f"{node.lineno}: import {a.name}" for a in node.names if a.name.startswith("connector.runtime")]
        elif isinstance(node, ast.Name) and node.id in EDGE_NAMES:
            found.append(f"{node.lineno}: {node.id}")
        elif isinstance(node, ast.Attribute) and node.attr in EDGE_NAMES:
            found.append(f"{node.lineno}: .{node.attr}")
    return found


@pytest.mark.parametrize("path", FLOWS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_a_flow_never_reaches_into_the_runtime(path: Path) -> None:
    assert runtime_uses(path) == []


def test_the_rule_sees_a_runtime_use() -> None:
    """The check above would catch the service locator it replaced."""
    assert runtime_uses(ROOT / "connector" / "functions" / "worker.py")


async def test_the_runtime_builds_each_flows_deps_once_and_shares_its_clients(tmp_path: Path) -> None:
    settings = load_settings(
        **BASE_ENV,
        AzureWebJobsStorage="UseDevelopmentStorage=true",  # never contacted: nothing here reads or writes storage
        LOCAL_SECRETS_FILE=str(tmp_path / "secrets.enc"),
        LOCAL_SECRETS_KEY=Fernet.generate_key().decode(),
        JOB_STALE_SECONDS="600",
        POLL_OVERLAP_SECONDS="45",
        POLL_ARCHIVED="false",
        MAPPING_FILE=str(ROOT / "config" / "mapping.example.yaml"),
    )
    rt = Runtime.open(settings)
    try:
        # Replays and the reconciler open no API client: they work with no API secret stored at all.
        requeue = await rt.requeue_deps()
        assert (requeue.stale_after, requeue.grace) == (600, settings.reconcile_grace_seconds)
        assert requeue.state is rt.state and requeue.queues is rt.queues
        for name in (SecretNames.PIPEDRIVE_API_TOKEN, SecretNames.D365_CLIENT_SECRET):
            await rt.secrets.set(name, "never-sent")

        order, master, diff, poll = (await rt.order_deps(), await rt.master_deps(), await rt.diff_deps(),
                                     await rt.poll_deps())  # fmt: skip
        assert await rt.order_deps() is order and await rt.master_deps() is master
        assert await rt.requeue_deps() is requeue
        assert diff.masters is master and poll.overlap_seconds == 45 and poll.archived is False
        # One client per API and one field-definition cache per entity, whichever flow uses them.
        assert order.pipedrive is master.pipedrive is poll.pipedrive
        assert order.d365 is master.d365
        assert order.org_fields is master.org_fields and order.deal_fields is not order.org_fields
        assert order.runner.worker == master.runner.worker == rt.worker

        # Another mapping (tests) builds the deps again with it; the clients stay.
        other = rt.mapping.model_copy()
        rt.mapping = other
        again = await rt.order_deps()
        assert again is not order and again.cfg is other and again.pipedrive is order.pipedrive
        assert (await rt.master_deps()).currencies == {}
    finally:
        await rt.close()
