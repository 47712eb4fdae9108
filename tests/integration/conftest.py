from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

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
