"""API tests against a scripted engine (an httpx MockTransport standing in for Rasa).

Only unit tests use this fake; tests/integration drives the real Rasa and action servers.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from bot.identity import issue_customer_token
from bot.settings import Settings

Script = Callable[[dict[str, Any]], Any]


class FakeEngine:
    """Answers turns with ``script(body)``: a dict (the channel's JSON), an int (a status),
    or an exception to raise. Records every body it was sent."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.delay = 0.0
        self.script: Script = lambda body: {
            "replies": [{"text": f"echo: {body['text']}"}],
            "nlu": {"intent": "greet", "confidence": 0.9, "entities": []},
            "actions": ["utter_greet"],
            "language": "zh",
            "failure": None,
        }

    async def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/ready"):
            return httpx.Response(200, json={"model": True, "action_server": True})
        body = json.loads(request.content)
        if body.get("metadata", {}).get("warmup"):
            return httpx.Response(200, json={"replies": [{"text": "hi"}]})
        self.calls.append(body)
        if self.delay:
            await asyncio.sleep(self.delay)
        result = self.script(body)
        if isinstance(result, Exception):
            raise result
        if isinstance(result, int):
            return httpx.Response(result)
        return httpx.Response(200, json=result)


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def settings(app_db: str) -> Settings:
    return Settings(
        database_url=app_db,
        secret_key="k",
        store_token_secret="s",
        turn_deadline_seconds=1.0,
        environment="test",
    )


@pytest.fixture
def client(settings: Settings, engine: FakeEngine) -> Iterator[TestClient]:
    app = create_app(settings, engine_transport=httpx.MockTransport(engine.handler))
    with TestClient(app) as test_client:
        for _ in range(200):
            if test_client.get("/health/ready").status_code == 200:
                break
            asyncio.run(asyncio.sleep(0.02))
        yield test_client


def customer_token(external_id: str = "C00001") -> str:
    return issue_customer_token(external_id, key="s")
