"""Fan-out of live events to the sockets watching a key (a conversation id, an agent).

``EventHub`` delivers in-process: right for one API worker. ``RedisEventHub`` has the same
interface and sends every event through one Redis channel, so a socket on any worker sees
events published on any other (``KEFU_REDIS_URL``). ``make_hub`` picks one from the
settings. Events are hints for live screens: a socket that misses some (a full queue, a
Redis outage) re-syncs from the stored history, which stays the source of truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections import defaultdict
from typing import Any

from bot.settings import Settings

Event = dict[str, Any]
logger = logging.getLogger("kefu.events")

CHANNEL = "kefu:events"
RECONNECT_SECONDS = 1.0


class EventHub:
    """Publish/subscribe by key, in-process."""

    def __init__(self, *, queue_size: int = 256) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[Event]]] = defaultdict(set)
        self._queue_size = queue_size

    async def start(self) -> None:
        """Connect the transport (nothing to do in-process)."""

    async def aclose(self) -> None:
        """Disconnect the transport."""

    def subscribe(self, key: str) -> asyncio.Queue[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue(self._queue_size)
        self._subscribers[key].add(queue)
        return queue

    def unsubscribe(self, key: str, queue: asyncio.Queue[Event]) -> None:
        subscribers = self._subscribers.get(key)
        if subscribers is None:
            return
        subscribers.discard(queue)
        if not subscribers:
            del self._subscribers[key]

    def publish(self, key: str, event: Event) -> None:
        self._deliver(key, event)

    def _deliver(self, key: str, event: Event) -> None:
        for queue in list(self._subscribers.get(key, ())):
            # A stalled socket must not stall the others; it re-syncs from history.
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(event)


class RedisEventHub(EventHub):
    """Every worker publishes to, and listens on, one Redis pub/sub channel; each delivers
    the events whose key its own sockets watch.

    ``publish`` stays synchronous: events go into an outbox that one task sends in order on
    one connection, so a conversation's events arrive in the order they were published —
    on this worker too, as local sockets are served from the channel like remote ones. One
    channel for the store keeps subscription instant (no per-key SUBSCRIBE to race with);
    at a scale where every worker should not see every event, shard channels by key hash.
    """

    def __init__(self, url: str, *, queue_size: int = 256) -> None:
        super().__init__(queue_size=queue_size)
        self.url = url
        self.origin = f"{os.getpid()}-{id(self)}"
        self._outbox: asyncio.Queue[str] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribed = asyncio.Event()
        self._client: Any = None

    async def start(self) -> None:
        import redis.asyncio as redis

        self._client = redis.Redis.from_url(self.url)
        self._tasks = [
            asyncio.create_task(self._listen(), name="events-listen"),
            asyncio.create_task(self._send(), name="events-send"),
        ]
        # Until the subscription stands, this worker would miss its own events.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), 5)

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    def publish(self, key: str, event: Event) -> None:
        self._outbox.put_nowait(json.dumps({"key": key, "event": event}, default=str))

    async def _send(self) -> None:
        while True:
            data = await self._outbox.get()
            while True:
                try:
                    await self._client.publish(CHANNEL, data)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.warning("redis publish failed; retrying", exc_info=True)
                    await asyncio.sleep(RECONNECT_SECONDS)

    async def _listen(self) -> None:
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                self._subscribed.set()
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None or message.get("type") != "message":
                        continue
                    try:
                        body = json.loads(message["data"])
                        self._deliver(str(body["key"]), body["event"])
                    except (ValueError, KeyError, TypeError):
                        logger.warning("malformed event on %s", CHANNEL)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("redis subscription lost; reconnecting", exc_info=True)
                await asyncio.sleep(RECONNECT_SECONDS)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()


def make_hub(settings: Settings) -> EventHub:
    """Redis fan-out when ``KEFU_REDIS_URL`` is set, else in-process."""
    return RedisEventHub(settings.redis_url) if settings.redis_url else EventHub()
