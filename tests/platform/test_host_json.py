"""host.json is the one source of the host's queue rules: the poison threshold, the local runner's batch
and retry delay, and the timeout the job lease must outlive are read from it, never kept as copies."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from connector.dev.localhost import QueuePump
from connector.errors import ConfigError
from connector.flows.runner import Lifecycle
from connector.host_json import host_json, parse_timespan, read_host_json
from connector.settings import Settings, load_settings
from tests.fixtures.platform import BASE_ENV

ROOT = Path(__file__).resolve().parents[2]
HOST = json.loads((ROOT / "host.json").read_text())


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("00:00:30", timedelta(seconds=30)),
        ("00:10:00", timedelta(minutes=10)),
        ("1.02:03:04", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("00:00:01.5", timedelta(seconds=1.5)),
        ("-1", None),
    ],
)
def test_timespans_are_read_as_the_host_writes_them(text: str, span: timedelta | None) -> None:
    assert parse_timespan(text) == span


def test_the_apps_host_json_is_what_the_connector_reads() -> None:
    read = read_host_json(env={})
    queues = HOST["extensions"]["queues"]
    assert read.queues.max_dequeue_count == queues["maxDequeueCount"]
    assert read.queues.batch_size == queues["batchSize"]
    assert read.queues.visibility_timeout == parse_timespan(queues["visibilityTimeout"])
    assert read.queues.message_encoding == queues["messageEncoding"]
    assert read.function_timeout == parse_timespan(HOST["functionTimeout"])


def test_app_settings_override_host_json_as_in_azure(tmp_path: Path) -> None:
    (tmp_path / "host.json").write_text(json.dumps(HOST))
    env = {
        "AzureFunctionsJobHost__extensions__queues__maxDequeueCount": "3",
        "AZUREFUNCTIONSJOBHOST__EXTENSIONS__QUEUES__BATCHSIZE": "2",
        "AzureFunctionsJobHost__functionTimeout": "00:05:00",
    }
    read = read_host_json(tmp_path / "host.json", env)
    assert (read.queues.max_dequeue_count, read.queues.batch_size) == (3, 2)
    assert read.function_timeout == timedelta(minutes=5)


def test_an_absent_value_is_the_hosts_default(tmp_path: Path) -> None:
    (tmp_path / "host.json").write_text('{"version": "2.0"}')
    read = read_host_json(tmp_path / "host.json", {})
    assert (read.queues.max_dequeue_count, read.queues.batch_size) == (5, 16)
    assert read.queues.visibility_timeout == timedelta(0)


@pytest.mark.parametrize(
    ("queues", "named"),
    [({"maxDequeueCount": 0}, "queues.maxDequeueCount"), ({"visibilityTimeout": "soon"}, "queues.visibilityTimeout")],
)
def test_a_bad_host_json_is_a_config_error_naming_the_value(tmp_path: Path, queues: dict[str, Any], named: str) -> None:
    (tmp_path / "host.json").write_text(json.dumps({"extensions": {"queues": queues}}))
    with pytest.raises(ConfigError, match=named):
        read_host_json(tmp_path / "host.json", {})


def test_a_max_dequeue_count_setting_that_disagrees_with_host_json_fails_at_start() -> None:
    threshold = host_json().queues.max_dequeue_count
    assert (
        load_settings(**BASE_ENV, AzureWebJobsStorage="x", MAX_DEQUEUE_COUNT=threshold).max_dequeue_count == threshold
    )
    with pytest.raises(ConfigError, match=r"MAX_DEQUEUE_COUNT: must equal host.json maxDequeueCount"):
        load_settings(**BASE_ENV, AzureWebJobsStorage="x", MAX_DEQUEUE_COUNT=threshold + 1)


def test_the_local_runner_takes_batch_size_and_retry_delay_from_host_json() -> None:
    rt: Any = SimpleNamespace(queues=SimpleNamespace(order_queue="order-build"))
    pump = QueuePump(rt)
    assert pump.batch_size == HOST["extensions"]["queues"]["batchSize"]
    assert timedelta(seconds=pump.retry_after) == parse_timespan(HOST["extensions"]["queues"]["visibilityTimeout"])
    assert QueuePump(rt, batch_size=1, retry_after=0).batch_size == 1  # tests and benches may still choose


def test_the_default_job_lease_outlives_the_function_timeout() -> None:
    """A live worker is never overtaken: the host stops a run before its lease (not yet renewed) ends."""
    timeout = host_json().function_timeout
    assert timeout is not None
    assert Settings.model_fields["job_lease_seconds"].default > timeout.total_seconds()
    assert Lifecycle().lease_seconds > timeout.total_seconds()
