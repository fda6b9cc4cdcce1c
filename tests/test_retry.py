"""RateLimitPacer in virtual time: the pacing bounds, the server's holds, and no pacing without headers.

Tests run on an event loop whose clock only moves when every task is waiting (its selector adds
the timeout instead of blocking), so `asyncio.sleep` costs no real time and timings are exact.
The "server" is the Pipedrive simulator's own rolling-window limiter on that clock.
"""

from __future__ import annotations

import asyncio
import random
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx
import pytest

from connector.dev.sandbox.pipedrive.envelope import ApiError
from connector.dev.sandbox.pipedrive.ratelimit import RateLimiter, RateLimits
from connector.errors import RetryLaterError
from connector.pacing import RateLimitPacer
from connector.pipedrive.client import rate_classes
from connector.retry import RetryPolicy, RetryTransport

T = TypeVar("T")
POLICY = RetryPolicy(
    max_attempts=6, backoff_initial=0.01, backoff_max=0.05, jitter=0.01, max_inline_wait=30, pace_below_remaining=1
)


class _VirtualSelector(selectors.DefaultSelector):
    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        events = super().select(0)
        if not events:
            if timeout is None:
                raise RuntimeError("deadlock: every task waits and no timer is pending")
            self._loop.now += timeout
        return events


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self.now = 0.0
        super().__init__(_VirtualSelector(self))

    def time(self) -> float:
        return self.now


def run(coro: Coroutine[Any, Any, T]) -> T:
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def now() -> float:
    return asyncio.get_running_loop().time()


def pacer(policy: RetryPolicy = POLICY) -> RateLimitPacer:
    return RateLimitPacer(policy, clock=now)


def answer(limit: int, remaining: int, reset: float, status: int = 200, **extra: str) -> httpx.Response:
    headers = {
        "x-ratelimit-limit": str(limit),
        "x-ratelimit-remaining": str(remaining),
        "x-ratelimit-reset": str(reset),
    }
    return httpx.Response(status, headers=headers | extra)


async def one(p: RateLimitPacer, response: httpx.Response | None = None) -> float:
    """One request through the pacer, answered at once; returns its start time."""
    await p.wait()
    started = now()
    p.finished(response)
    return started


class LimitedServer(httpx.AsyncBaseTransport):
    """Stands in for Pipedrive: latency, then the simulator's limiter counts the request mid-flight."""

    def __init__(self, limits: RateLimits, seed: int = 1) -> None:
        self.limiter = RateLimiter(limits, clock=now)
        self.rnd = random.Random(seed)
        self.counted: list[float] = []  # when the server accepted each request
        self.searches: list[float] = []  # ... each search (the simulator counts them in their own window)
        self.refused: list[float] = []  # when it answered 429

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        latency = self.rnd.uniform(0.05, 0.15)
        before = latency * self.rnd.random()
        await asyncio.sleep(before)
        search = request.url.path.endswith("/search")
        try:
            headers = self.limiter.check("token", "api_token", 1, search=search)
            status = 200
            (self.searches if search else self.counted).append(now())
        except ApiError as refused:
            headers, status = refused.headers, refused.status
            self.refused.append(now())
        await asyncio.sleep(latency - before)
        return httpx.Response(status, headers=headers)


def most_in_any_span(times: list[float], span: float) -> int:
    times = sorted(times)
    best, first = 0, 0
    for last, t in enumerate(times):
        while times[first] <= t - span:
            first += 1
        best = max(best, last - first + 1)
    return best


async def drive(server: LimitedServer, workers: int, seconds: float) -> None:
    transport = RetryTransport(server, POLICY, pacer=pacer())
    stop = now() + seconds

    async def worker() -> None:
        while now() < stop:
            response = await transport.handle_async_request(httpx.Request("GET", "https://x.test/api/v2/deals/1"))
            assert response.status_code == 200

    await asyncio.gather(*(worker() for _ in range(workers)))


@pytest.mark.parametrize("workers", [8, 16])
def test_concurrent_workers_run_near_the_limit_without_429s(workers: int) -> None:
    server = LimitedServer(RateLimits(burst_api_token=40, window_seconds=2.0))  # whole-second resets
    run(drive(server, workers, seconds=30.0))
    assert server.refused == []
    assert most_in_any_span(server.counted, 2.0) <= 40
    rate = len(server.counted) / 30.0
    assert rate >= 0.85 * 40 / 2.0, f"{rate:.1f} requests/s against a bound of 20/s"


def test_only_the_opening_volley_is_refused() -> None:
    server = LimitedServer(RateLimits(burst_api_token=40, window_seconds=2.0))
    run(drive(server, 60, seconds=20.0))  # 60 start before any limit is known: 20 refused
    assert server.refused and max(server.refused) < 0.2
    assert len(server.counted) >= 0.85 * 20 * 20


def test_never_more_than_the_budget_starts_in_a_window_and_spacing_resumes_as_it_slides() -> None:
    async def main() -> list[float]:
        p = pacer()  # limit 5, pace_below_remaining 1 -> at most 3 in a window (server's remaining >= 2)
        starts = [await one(p, answer(5, 4, 2))]
        for _ in range(2):
            await asyncio.sleep(0.5)
            starts.append(await one(p, answer(5, 3, 2)))
        for _ in range(4):
            starts.append(await one(p, answer(5, 2, 2)))
        return starts

    starts = run(main())
    assert starts[:3] == [0.0, 0.5, 1.0]
    assert starts[3:] == pytest.approx([2.0, 2.5, 3.0, 4.0])  # each as the oldest answer ages out
    assert most_in_any_span(starts, 2.0) == 3


def test_running_requests_count_until_one_window_after_their_answer() -> None:
    async def main() -> float:
        p = pacer()
        for _ in range(3):
            await p.wait()  # three requests in flight: the window is full
        p.observe(answer(5, 2, 2))
        blocked = asyncio.ensure_future(one(p))
        await asyncio.sleep(1.0)
        assert not blocked.done()
        p.finished()  # one answer at t=1: its slot frees at t=3
        return await blocked

    assert run(main()) == pytest.approx(3.0)


def test_window_is_the_largest_reset_seen() -> None:
    async def main() -> float:
        p = pacer()
        await one(p, answer(3, 2, 2))  # budget 1: every start waits for the previous to age out
        return await one(p, answer(3, 2, 1))

    assert run(main()) == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("response", "until"),
    [
        (answer(40, 1, 2), 2.0),  # remaining at the threshold: hold until the reset
        (answer(40, 0, 1, status=429, **{"retry-after": "3"}), 3.0),  # 429: Retry-After wins
    ],
)
def test_server_held_waits_are_honoured(response: httpx.Response, until: float) -> None:
    async def main() -> float:
        p = pacer()
        await one(p, response)
        return await one(p)

    assert run(main()) == pytest.approx(until)


def test_hold_without_headers_is_honoured() -> None:
    async def main() -> float:
        p = pacer()
        p.hold(4.0)
        return await one(p)

    assert run(main()) == pytest.approx(4.0)


@pytest.mark.parametrize("server_hold", [True, False])
def test_waits_past_max_inline_wait_raise_retry_later(server_hold: bool) -> None:
    async def main() -> RetryLaterError:
        p = pacer(POLICY.model_copy(update={"max_inline_wait": 5.0}))
        await one(p, answer(10, 1 if server_hold else 8, 60))  # window 60 s, or the server says 60 s
        if not server_hold:
            for _ in range(7):
                await one(p, answer(10, 8, 60))
        with pytest.raises(RetryLaterError) as later:
            await p.wait()
        return later.value

    error = run(main())
    assert error.delay == pytest.approx(60.0) and error.status == 429


def test_no_pacing_without_rate_limit_headers() -> None:
    async def main() -> float:
        p = pacer()
        for _ in range(500):
            await one(p, httpx.Response(200, headers={"x-ms-request-id": "1"}))
        await asyncio.gather(*(p.wait() for _ in range(100)))  # never finished: still not paced
        return now()

    assert run(main()) == 0.0


class FlakyServer(httpx.AsyncBaseTransport):
    """Answers after 0.1 s with a limit of 3 per 2 s, except that the second call fails to connect."""

    def __init__(self) -> None:
        self.starts: list[float] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.starts.append(now())
        if len(self.starts) == 2:
            raise httpx.ConnectError("connection refused", request=request)
        await asyncio.sleep(0.1)
        return answer(3, 2, 2)


def test_failed_attempts_free_their_slot_and_count_in_the_window() -> None:
    async def main() -> list[float]:
        server = FlakyServer()
        transport = RetryTransport(server, POLICY, pacer=pacer())
        for _ in range(2):
            response = await transport.handle_async_request(httpx.Request("GET", "https://x.test/api/v2/deals/1"))
            assert response.status_code == 200
        return server.starts

    # Budget 1 per 2-s window: the failed attempt starts once the first answer (t=0.1) aged out, and
    # its retry once the failure did; a failure that kept its slot would leave the loop deadlocked.
    assert run(main()) == pytest.approx([0.0, 2.1, 4.1])


def test_each_wait_is_slept_once_even_if_the_injected_sleep_does_not_move_the_clock() -> None:
    slept: list[float] = []

    async def record(delay: float) -> None:
        slept.append(delay)

    async def main() -> None:
        p = RateLimitPacer(POLICY, clock=now, sleep=record)
        await one(p, answer(3, 2, 2))  # budget 1: the next start waits for the window
        p.hold(4.0)
        await p.wait()

    run(main())
    assert slept == [4.0, 2.0]


def test_a_whole_second_reset_of_zero_still_means_a_one_second_window() -> None:
    async def main() -> float:
        p = pacer()
        await one(p, answer(3, 2, 0))
        return await one(p, answer(3, 2, 0))

    assert run(main()) == pytest.approx(1.0)


def test_each_rate_limit_class_is_paced_on_its_own_budget() -> None:
    """Searches (10 / 2 s) mixed with other calls (40 / 2 s): neither limit governs the other's pace."""
    server = LimitedServer(RateLimits(burst_api_token=40, burst_search=10, window_seconds=2.0))

    policy = POLICY.model_copy(update={"pace_below_remaining": 0})  # the default: budgets 9 and 39

    async def main() -> None:
        transport = RetryTransport(server, policy, pacer=pacer(policy), rate_classes=rate_classes)
        stop = now() + 30.0

        async def worker(path: str) -> None:
            while now() < stop:
                response = await transport.handle_async_request(httpx.Request("GET", f"https://x.test{path}"))
                assert response.status_code == 200

        await asyncio.gather(*(worker("/api/v2/products/search") for _ in range(4)),
                             *(worker("/api/v2/deals/1") for _ in range(12)))  # fmt: skip

    run(main())
    assert server.refused == []
    assert most_in_any_span(server.searches, 2.0) <= 10
    # Searches count in the general budget too, so together they stay under the general limit.
    assert most_in_any_span(server.counted + server.searches, 2.0) <= 40
    assert len(server.searches) / 30.0 >= 0.8 * 10 / 2.0
    assert (len(server.counted) + len(server.searches)) / 30.0 >= 0.85 * 40 / 2.0


def _shared_run(busy: int, seconds: float, instances: int = 4) -> LimitedServer:
    """`busy` processes (one pacer each, `instances=4`), 8 workers each, on one token of 40 / 2 s."""
    server = LimitedServer(RateLimits(burst_api_token=40, window_seconds=2.0))
    shared = POLICY.model_copy(update={"instances": instances, "pace_below_remaining": 0})

    async def main() -> None:
        transports = [RetryTransport(server, shared, pacer=pacer(shared)) for _ in range(busy)]
        stop = now() + seconds

        async def worker(transport: RetryTransport) -> None:
            while now() < stop:
                await transport.handle_async_request(httpx.Request("GET", "https://x.test/api/v2/deals/1"))

        await asyncio.gather(*(worker(t) for t in transports for _ in range(8)))

    run(main())
    return server


def test_processes_sharing_a_token_split_its_limit_and_draw_no_429() -> None:
    """Four processes (one pacer each, `instances=4`) on one token: zero 429s, the limit still used."""
    server = _shared_run(busy=4, seconds=60.0)
    assert server.refused == []
    assert len(server.counted) / 60.0 >= 0.85 * 40 / 2.0


def test_a_stray_caller_on_a_shared_token_does_not_tip_the_sharing_processes_into_429s() -> None:
    """Four sharing processes at full speed and a fifth caller of the same token (the poll timer, the
    doctor, a CLI) reading twice every 2 s: the slot the split keeps free absorbs it. Without it the
    window filled to its last slot and each stray read set off a 429 the four then waited out in step."""
    server = LimitedServer(RateLimits(burst_api_token=40, window_seconds=2.0))
    shared = POLICY.model_copy(update={"instances": 4, "pace_below_remaining": 0})

    async def main() -> None:
        transports = [RetryTransport(server, shared, pacer=pacer(shared)) for _ in range(4)]
        stray = RetryTransport(server, POLICY, pacer=pacer())
        stop = now() + 30.0

        async def worker(transport: RetryTransport) -> None:
            while now() < stop:
                await transport.handle_async_request(httpx.Request("GET", "https://x.test/api/v2/deals/1"))

        async def poll() -> None:
            while now() < stop:
                for path in ("/api/v2/deals", "/api/v2/deals/archived"):
                    await stray.handle_async_request(httpx.Request("GET", f"https://x.test{path}"))
                await asyncio.sleep(2.0)

        await asyncio.gather(*(worker(t) for t in transports for _ in range(8)), poll())

    run(main())
    assert server.refused == []


def test_one_process_of_four_uses_only_its_share() -> None:
    """The price of the even split: one busy process among four idle ones gets its quarter (README sizing)."""
    server = _shared_run(busy=1, seconds=30.0)
    assert server.refused == []
    assert most_in_any_span(server.counted, 2.0) <= 10


def test_processes_unaware_of_each_other_draw_429s() -> None:
    """The same four processes without `instances`: what the share prevents (the bench shows the cost)."""
    server = LimitedServer(RateLimits(burst_api_token=40, window_seconds=2.0))

    async def main() -> None:
        transports = [RetryTransport(server, POLICY, pacer=pacer()) for _ in range(4)]
        stop = now() + 10.0

        async def worker(transport: RetryTransport) -> None:
            while now() < stop:
                await transport.handle_async_request(httpx.Request("GET", "https://x.test/api/v2/deals/1"))

        await asyncio.gather(*(worker(t) for t in transports for _ in range(8)))

    run(main())
    assert len(server.refused) > 0
