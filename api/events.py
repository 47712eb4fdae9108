"""In-process fan-out of live events to the sockets watching a conversation."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from typing import Any

Event = dict[str, Any]


class EventHub:
    """Publish/subscribe by conversation id. One API worker; several workers share events
    through Redis (the handoff issue adds that transport behind the same interface)."""

    def __init__(self, *, queue_size: int = 256) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[Event]]] = defaultdict(set)
        self._queue_size = queue_size

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
        for queue in list(self._subscribers.get(key, ())):
            # A stalled socket must not stall the others; it re-syncs from history.
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(event)
