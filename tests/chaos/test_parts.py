"""The chaos harness's own parts: a seeded schedule, the data set, the mapping per mode, the leak check."""

from __future__ import annotations

from pathlib import Path

from connector.dev.chaos.config import ChaosConfig
from connector.dev.chaos.judge import _short, leaks
from connector.dev.chaos.monkey import schedule
from connector.dev.chaos.seed import chaos_data, write_mapping
from connector.dev.sandbox.stack import numbers_from_deal
from connector.mapping.config import load_mapping


def test_schedule_is_seeded_and_holds_the_kills() -> None:
    config = ChaosConfig.short("from_deal", seed=3)
    first, again = schedule(config, timeouts=True), schedule(config, timeouts=True)
    assert first == again
    assert sum(e.kind == "kill" for e in first) == config.kills
    assert len(first) == config.kills + config.fault_events
    assert all(0 <= e.at <= config.chaos_seconds for e in first)
    assert schedule(ChaosConfig.short("from_deal", seed=4), timeouts=True) != first
    plain = schedule(ChaosConfig.short("from_deal", fault_events=300), timeouts=False)
    assert not {e.kind for e in plain} & {"d365-stall", "d365-late-commit"}


def test_data_set_spreads_deals_over_customers_and_companies() -> None:
    data = chaos_data(ChaosConfig(deals=200, seed=5))
    assert len(data.deals) == 200 == len({d.deal_id for d in data.deals})
    kinds = {d.customer.split(":")[0] for d in data.deals}
    assert kinds == {"org", "person"}
    assert {d.company for d in data.deals} == {"usmf", "demf"}
    seeded = {d["id"]: d for d in data.pipedrive["deals"]}
    for deal in data.deals:
        assert len(seeded[deal.deal_id]["products"]) == len(deal.lines)
        assert ("org_id" in seeded[deal.deal_id]) == deal.customer.startswith("org:")
    assert chaos_data(ChaosConfig(deals=200, seed=5)).deals == data.deals


def test_mapping_per_numbering_mode(tmp_path: Path) -> None:
    from_deal = write_mapping("from_deal", tmp_path)
    sequence = write_mapping("d365_sequence", tmp_path)
    assert load_mapping(from_deal).order.number_template == "PD{deal_id}" and numbers_from_deal(from_deal)
    assert load_mapping(sequence).order.number_template is None and not numbers_from_deal(sequence)


def test_leak_check_names_secrets_without_showing_them() -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.eyJhdWQiOiJodHRwczovL3gifQ.c2lnbmF0dXJlLXZhbHVl"
    found = leaks(f"GET /x api token=hunter2-secret-value then Bearer {token}", ["hunter2-secret-value", "absent"])
    assert found == ["secret #0 (20 chars)", "1 JWT access token(s)"]
    assert all("hunter2" not in f and token not in f for f in found)
    assert leaks("nothing to see", ["hunter2-secret-value"]) == []


def test_failure_reasons_are_grouped_without_particulars() -> None:
    one = _short("POST $batch (POST SalesOrderHeadersV2, POST SalesOrderLines) refused by D365: item 'X1' unknown")
    two = _short("POST $batch (POST SalesOrderHeadersV2) refused by D365: item 'X1' unknown")
    assert one == two == "POST $batch refused by D#: item 'X#' unknown"
