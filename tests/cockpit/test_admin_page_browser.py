"""The admin page in a real headless Chromium (Debian `chromium` + `chromium-driver`), driven by Selenium.

The browser talks to the local runner over loopback; every Selenium call runs in a thread so the
runner, on this test's event loop, keeps answering.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import pytest

from connector.dev.localhost import LocalHost
from tests.fixtures.stack import E2E

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/lib/chromium/chromedriver"
KEY = "page-test-key-0123456789"
T = TypeVar("T")

pytestmark = pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)),
    reason="needs Debian packages chromium and chromium-driver (apt-get install -y chromium chromium-driver)",
)


class Page:
    """A Selenium driver whose calls run off the event loop."""

    def __init__(self, driver: Any, base: str) -> None:
        self.driver, self.base = driver, base

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    async def open(self, path: str) -> str:
        await self.run(self.driver.get, self.base + path)
        return await self.run(lambda: self.driver.page_source)

    async def text(self, css: str) -> str:
        from selenium.webdriver.common.by import By

        return await self.run(lambda: self.driver.find_element(By.CSS_SELECTOR, css).text)

    async def click(self, css: str) -> None:
        """Click, then wait for the page the click loads (the old document goes stale), not a fixed time."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.wait import WebDriverWait

        def go() -> None:
            old = self.driver.find_element(By.TAG_NAME, "html")
            self.driver.find_element(By.CSS_SELECTOR, css).click()
            WebDriverWait(self.driver, 30).until(expected_conditions.staleness_of(old))
            WebDriverWait(self.driver, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")

        await self.run(go)


@pytest.fixture
async def page(e2e: E2E) -> AsyncIterator[Page]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager download anything
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    driver = await asyncio.to_thread(webdriver.Chrome, options=options, service=Service(executable_path=DRIVER))
    host = LocalHost(e2e.rt, admin_key=KEY)
    await host.start(workers=False)
    try:
        yield Page(driver, host.base_url)
    finally:
        await asyncio.to_thread(driver.quit)
        await host.stop()


async def test_the_page_shows_a_failed_job_and_its_replay_button_queues_the_deal(e2e: E2E, page: Page) -> None:
    await e2e.win(101, 108)  # 108 has a product without a code: a failed job with its reason
    await e2e.drain()
    html = await page.open(f"/api/admin/ui?code={KEY}")
    assert "ml-connector — operations" in html
    jobs = await page.text("#jobs")
    assert "orders 0 0 1 1" in jobs.replace("\n", " ")
    failed = await page.text("tr[data-job='order/108']")
    assert "has no code; set its code to a D365 item number" in failed

    await page.click("tr[data-job='order/108'] button")
    assert "re-queued: 108" in await page.text("#message")
    assert await e2e.queue_depth() == 1
    assert (await e2e.job(108)).state == "queued"


async def test_audit_trail_poison_and_doctor_from_the_page(e2e: E2E, page: Page) -> None:
    await e2e.win(101)
    await e2e.drain()
    await page.open(f"/api/admin/ui?code={KEY}")
    from selenium.webdriver.common.by import By

    def type_deal() -> None:
        box = page.driver.find_element(By.ID, "deal-input")
        box.clear()
        box.send_keys("101")

    await page.run(type_deal)
    await page.click("#trail + form button")
    trail = await page.text("#audit")
    assert "order.created" in trail and "build.done" in trail

    # A message in the poison queue: its depth shows, and the button moves it back.
    poison = await e2e.rt.queues.client(f"{e2e.rt.queues.order_queue}-poison")
    await poison.send_message(
        '{"v": 1, "kind": "order.build", "deal_id": 102, "reason": "poll", "correlation_id": "p"}'
    )
    await page.open(f"/api/admin/ui?code={KEY}")
    assert await page.text(f"b[data-poison='{e2e.rt.queues.order_queue}']") == "1"
    assert "deal-102" in await page.run(lambda: page.driver.page_source)
    await page.click("form[action*='replay'] input[name=poison] ~ button")
    assert "poison messages re-queued: 1" in await page.text("#message")
    assert await e2e.poison_depth() == 0

    await page.click("#run-doctor")
    table = await page.text("#doctor-table")
    assert "d365.auth" in table and "pipedrive.auth" in table


async def test_a_wrong_or_missing_key_is_refused(e2e: E2E, page: Page) -> None:
    for path in ("/api/admin/ui?code=wrong-key", "/api/admin/ui", "/api/admin/doctor?code=nope"):
        html = await page.open(path)
        assert "missing or wrong function key" in html, path
        assert "Failed jobs" not in html
