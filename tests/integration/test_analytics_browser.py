"""The analytics dashboard in a real browser (chromium): an ops account opens it over a
fortnight of demo history; every chart is drawn, the heatmap has 7 × 24 cells, the
confidence chart follows the intent picker, and nothing breaks the console's CSP."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot.services import analytics, staff
from bot.services.analytics_demo import write_demo_history
from tests.support.browser import SCREENSHOTS, screenshot
from tests.support.stack import Stack

PASSWORD = "correct horse battery"
OPS = "ops.analytics@kefu.test"
CANVASES = ("chart-daily", "chart-reasons", "chart-intents", "chart-csat", "chart-confidence")
# Non-blank pixels of each chart's canvas, and whether Chart.js owns it.
DRAWN = """(ids) => ids.map((id) => {
  const canvas = document.getElementById(id);
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) painted += 1;
  return { id, painted, chart: Boolean(window.Chart && window.Chart.getChart(canvas)) };
})"""


@pytest.fixture(scope="module")
def history(db: sa.Engine) -> int:
    with Session(db) as session:
        staff.create_staff(
            session=session, email=OPS, name="运营 Ops", role="ops", password=PASSWORD
        )
        made = write_demo_history(session=session, days=14, per_day=12)
        session.commit()
    return made.conversations


async def test_ops_opens_the_dashboard(
    stack: Stack, page: Any, history: int, db: sa.Engine
) -> None:
    problems: list[str] = []

    def console(message: Any) -> None:
        # The browser's own favicon request is not the page's (the console serves none).
        if message.type in ("error", "warning") and "favicon" not in str(message.location):
            problems.append(f"{message.type}: {message.text} at {message.location}")

    page.on("console", console)
    page.on("pageerror", lambda error: problems.append(f"pageerror: {error}"))

    await page.goto(f"{stack.api_url}/console/analytics")
    await page.locator("input[name=email]").fill(OPS)
    await page.locator("input[name=password]").fill(PASSWORD)
    async with page.expect_response(lambda r: "/console/analytics" in r.url) as info:
        await page.get_by_role("button", name="Log in 登录").click()
    response = await info.value
    assert "script-src 'self'" in response.headers["content-security-policy"]
    await page.wait_for_function("document.body.dataset.chartsReady === '5'")

    drawn = await page.evaluate(DRAWN, list(CANVASES))
    for canvas in drawn:
        assert canvas["chart"], canvas
        assert canvas["painted"] > 500, canvas  # axes, bars and lines, not an empty canvas
    conversations = int(await page.locator("#kpi-conversations").inner_text())
    # The stack's database also holds the other tests' chats: the page says what the
    # database holds for the default range, the demo fortnight included.
    tz = "Asia/Shanghai"
    start, end = analytics.default_range(tz=tz)
    with Session(db) as session:
        per_day = analytics.conversations_per_day(session, start=start, end=end, tz=tz)
    assert history > 0 and conversations == sum(d["conversations"] for d in per_day) > 0

    rows = page.locator("#heatmap tbody tr")
    assert await rows.count() == 7
    assert await page.locator("#heatmap tbody td.heat-cell").count() == 7 * 24
    cells = await page.locator("#heatmap tbody td.heat-cell").all_inner_texts()
    assert sum(int(text) for text in cells) == conversations

    picker = page.locator("#confidence-intent")
    intents = await picker.locator("option").all_inner_texts()
    assert len(intents) > 3
    await picker.select_option(intents[2])
    label = await page.evaluate("window.kefuAnalytics.confidence.data.datasets[0].label")
    assert label == intents[2]

    table = page.locator("details", has_text="Day 日期").first
    await table.locator("summary").click()
    assert await table.locator("tbody tr").count() == 14

    await screenshot(page, "analytics-dashboard")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "analytics-full.png"), full_page=True)
    assert problems == []  # no script errors, no Content-Security-Policy violations
