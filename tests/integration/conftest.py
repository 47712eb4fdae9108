from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.support.browser import LAUNCH_ARGS, chromium_path
from tests.support.chat_client import ChatClient
from tests.support.stack import Stack


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The real Rasa server, action server and API, once per test session."""
    running = Stack(Path(tmp_path_factory.mktemp("stack"))).start()
    yield running
    running.close()


@pytest.fixture(scope="session")
def db(stack: Stack) -> Iterator[sa.Engine]:
    engine = sa.create_engine(stack.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
async def shopper(stack: Stack) -> AsyncIterator[ChatClient]:
    client = ChatClient(stack.api_url)
    yield client
    await client.close()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    """Headless chromium, once per test session (skipped only where none is installed and
    ``KEFU_REQUIRE_BROWSER`` is unset; CI sets it)."""
    from playwright.async_api import async_playwright

    path = chromium_path()
    if path is None:
        if os.environ.get("KEFU_REQUIRE_BROWSER"):
            raise RuntimeError("chromium is required (apt-get install chromium)")
        pytest.skip("chromium is not installed")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=path, args=LAUNCH_ARGS)
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    """A fresh browser profile per test (its own localStorage: a new visitor)."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    opened = await context.new_page()
    yield opened
    await context.close()
