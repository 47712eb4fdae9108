"""The console shell in a real browser: log-in, log-out, a wrong password, roles."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot.services import staff
from tests.support.browser import screenshot
from tests.support.stack import Stack

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def accounts(db: sa.Engine) -> dict[str, str]:
    people = {"agent": "agent.browser@kefu.test", "admin": "admin.browser@kefu.test"}
    with Session(db) as session:
        for role, email in people.items():
            staff.create_staff(
                session=session, email=email, name=f"浏览器{role}", role=role, password=PASSWORD
            )
        session.commit()
    return people


async def log_in(page: Any, stack: Stack, email: str, password: str) -> None:
    await page.goto(f"{stack.api_url}/console/")
    await page.locator("input[name=email]").fill(email)
    await page.locator("input[name=password]").fill(password)
    await page.get_by_role("button", name="Log in 登录").click()


async def test_log_in_wrong_password_and_log_out(
    stack: Stack, page: Any, accounts: dict[str, str]
) -> None:
    await log_in(page, stack, accounts["agent"], "not the password")
    assert "Wrong e-mail or password" in await page.locator("[role=alert]").inner_text()
    assert page.url.endswith("/console/login")

    await log_in(page, stack, accounts["agent"], PASSWORD)
    await page.locator("h1", has_text="Welcome").wait_for()
    assert "agent" in await page.locator(".who").inner_text()
    nav = await page.locator("header nav a").all_inner_texts()
    assert "Staff" not in nav
    # An agent cannot open the admin page.
    response = await page.goto(f"{stack.api_url}/console/admin/staff")
    assert response is not None and response.status == 403
    await page.goto(f"{stack.api_url}/console/")
    await page.get_by_role("button", name="Log out").click()
    await page.locator("input[name=email]").wait_for()
    # The session is over: the console sends us back to the log-in page.
    await page.goto(f"{stack.api_url}/console/")
    assert "/console/login" in page.url


async def test_admin_sees_the_staff_page(stack: Stack, page: Any, accounts: dict[str, str]) -> None:
    await log_in(page, stack, accounts["admin"], PASSWORD)
    async with page.expect_response(lambda r: r.url.endswith("/console/admin/staff")) as info:
        await page.get_by_role("link", name="Staff").first.click()
    response = await info.value
    assert "default-src 'self'" in response.headers["content-security-policy"]
    await page.locator("table").wait_for()
    assert accounts["agent"] in await page.locator("table").inner_text()
    await screenshot(page, "console-staff")
