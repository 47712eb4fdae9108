"""The gateway's client for the Rasa servers' Kefu channel (``engine.channel.KefuInput``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from anyio import to_thread
from sqlalchemy.orm import Session

from api.hashring import HashRing
from bot.clock import utcnow
from bot.db import run_with_retry
from bot.services import lifecycle
from bot.settings import Settings

logger = logging.getLogger(__name__)


class EngineError(Exception):
    """A turn the engine did not answer: ``code`` is deadline, unavailable or bad_response."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class EngineTurn:
    replies: list[dict[str, Any]]
    nlu: dict[str, Any] = field(default_factory=dict)
    actions: list[str] = field(default_factory=list)
    language: str | None = None
    failure: str | None = None


class EngineClient:
    """Sends turns to the Rasa server that owns the conversation, under a deadline."""

    def __init__(
        self,
        urls: list[str],
        *,
        deadline: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.urls = [u.rstrip("/") for u in urls]
        self.ring = HashRing(self.urls)
        self.deadline = deadline
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(deadline, connect=min(2.0, deadline)),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )

    def url_for(self, conversation_id: str) -> str:
        return self.ring.node_for(conversation_id)

    def set_urls(self, urls: list[str]) -> None:
        """Send new turns to ``urls`` (the engine manager swapped models); turns in flight
        finish on the server they started on."""
        cleaned = [u.rstrip("/") for u in urls]
        ring = HashRing(cleaned)  # raises on an empty list before anything changes
        self.ring, self.urls = ring, cleaned

    async def turn(
        self,
        conversation_id: str,
        message_id: str,
        text: str,
        metadata: dict[str, Any],
        *,
        control: str | None = None,
    ) -> EngineTurn:
        """One turn. ``control="handback"`` (with an external intent as ``text``) tells the
        channel that a person handed the chat back: it ends any active form first."""
        url = f"{self.url_for(conversation_id)}/webhooks/kefu/turn"
        body: dict[str, Any] = {
            "sender": conversation_id,
            "message_id": message_id,
            "text": text,
            "metadata": metadata,
        }
        if control is not None:
            body["control"] = control
        try:
            # A whole-turn deadline: httpx's own timeouts are per read, not per request.
            response = await asyncio.wait_for(self._client.post(url, json=body), self.deadline)
        except (TimeoutError, asyncio.TimeoutError, httpx.TimeoutException) as exc:
            raise EngineError("deadline") from exc
        except httpx.HTTPError as exc:
            raise EngineError("unavailable") from exc
        if response.status_code == 503:
            raise EngineError("unavailable")
        if response.status_code != 200:
            raise EngineError("bad_response")
        try:
            data = response.json()
            return EngineTurn(
                replies=[r for r in data.get("replies", []) if isinstance(r, dict)],
                nlu=data.get("nlu") or {},
                actions=[a for a in data.get("actions", []) if isinstance(a, str)],
                language=data.get("language"),
                failure=data.get("failure"),
            )
        except (ValueError, AttributeError) as exc:
            raise EngineError("bad_response") from exc

    async def ready(self) -> dict[str, bool]:
        """Per server: model loaded and action server healthy."""

        async def check(url: str) -> bool:
            try:
                response = await self._client.get(f"{url}/webhooks/kefu/ready", timeout=3.0)
                return response.status_code == 200
            except httpx.HTTPError:
                return False

        results = await asyncio.gather(*(check(u) for u in self.urls))
        return dict(zip(self.urls, results, strict=True))

    async def aclose(self) -> None:
        await self._client.aclose()


async def read_endpoint(settings: Settings) -> tuple[int, list[str], bool] | None:
    """The engine manager's record (bot.models.lifecycle.EngineEndpoint): its generation,
    URLs and whether its manager is alive (heartbeat within ten polls, at least 15 s)."""

    def read(session: Session) -> tuple[int, list[str], bool] | None:
        found = lifecycle.current_endpoint(session=session)
        if found is None:
            return None
        max_age = max(15.0, 10 * settings.engine_poll_seconds)
        return found.generation, found.urls, found.is_live(utcnow(), max_age)

    return await to_thread.run_sync(lambda: run_with_retry(read, attempts=1))


async def follow_endpoint(
    engine: EngineClient,
    read: Callable[[], Awaitable[tuple[int, list[str], bool] | None]],
    *,
    interval: float,
) -> None:
    """Switch ``engine`` whenever the engine manager publishes a new generation.

    ``read`` gives the record's (generation, urls, live) or None; a record whose manager is
    not alive (a stale row from an earlier run) is not followed. Runs until cancelled."""
    seen = 0
    failing = False
    while True:
        try:
            record = await read()
            failing = False
        except Exception:  # the database may be briefly away; the current URLs keep serving
            if not failing:
                logger.warning("could not read the engine endpoint", exc_info=True)
            failing = True
            record = None
        if record is not None:
            generation, urls, live = record
            if live and urls and generation > seen:
                seen = generation
                if [u.rstrip("/") for u in urls] != engine.urls:
                    engine.set_urls(urls)
                    logger.info("engine switched", extra={"generation": generation, "urls": urls})
        await asyncio.sleep(interval)
