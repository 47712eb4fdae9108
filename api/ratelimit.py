"""Limits of the public chat: sliding windows of events, and counts of open sockets.

In-process by default (one API worker); through Redis when ``KEFU_REDIS_URL`` is set, so
several workers share the counts. Both count the same way: an event is allowed when fewer
than ``limit`` events of the same key happened in the last ``window`` seconds (a sliding
log, so a burst cannot straddle two fixed windows and get twice the limit).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from bot.errors import RateLimited
from bot.settings import Settings

Now = Callable[[], float]


class Limiter(Protocol):
    async def hit(self, key: str, limit: int, window: float, *, consume: bool = True) -> float:
        """0 if the event is allowed (and counted, if ``consume``), else seconds to wait."""

    async def acquire(self, key: str, limit: int) -> bool:
        """Take one of ``limit`` places (an open socket); False if all are taken."""

    async def release(self, key: str) -> None: ...

    async def aclose(self) -> None: ...


class MemoryLimiter:
    """One worker's limits. Keys with no recent events are forgotten as they are seen."""

    def __init__(self, now: Now = time.monotonic) -> None:
        self._now = now
        self._events: dict[str, deque[float]] = {}
        self._open: dict[str, int] = {}
        self._calls = 0

    async def hit(self, key: str, limit: int, window: float, *, consume: bool = True) -> float:
        now = self._now()
        events = self._events.setdefault(key, deque())
        while events and events[0] <= now - window:
            events.popleft()
        self._calls += 1
        if self._calls % 1024 == 0:
            self._sweep(now, window)
        if len(events) >= limit:
            return max(events[0] + window - now, 0.001)
        if consume:
            events.append(now)
        elif not events:
            del self._events[key]
        return 0.0

    def _sweep(self, now: float, window: float) -> None:
        # Bounded memory: drop keys whose newest event is older than the longest window.
        horizon = max(window, 3600.0)
        for key in [k for k, v in self._events.items() if not v or v[-1] <= now - horizon]:
            del self._events[key]

    async def acquire(self, key: str, limit: int) -> bool:
        if self._open.get(key, 0) >= limit:
            return False
        self._open[key] = self._open.get(key, 0) + 1
        return True

    async def release(self, key: str) -> None:
        left = self._open.get(key, 0) - 1
        if left > 0:
            self._open[key] = left
        else:
            self._open.pop(key, None)

    async def aclose(self) -> None:
        return None


# Atomic check-and-add of a sliding log held in a sorted set (scores are times).
_HIT_SCRIPT = """
local key, now, window, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) >= limit then
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return tostring(tonumber(oldest[2]) + window - now)
end
if ARGV[4] == '1' then
  redis.call('ZADD', key, now, ARGV[5])
  redis.call('PEXPIRE', key, math.ceil(window * 1000))
end
return '0'
"""
# A socket count survives a crashed worker for at most this long.
_OPEN_TTL_SECONDS = 3600


class RedisLimiter:
    """Limits shared by every API worker through one Redis."""

    def __init__(self, url: str, *, prefix: str = "kefu:limit:", now: Now = time.time) -> None:
        import redis.asyncio as redis

        self._redis: Any = redis.Redis.from_url(url)
        self._prefix = prefix
        self._now = now
        self._script = self._redis.register_script(_HIT_SCRIPT)

    async def hit(self, key: str, limit: int, window: float, *, consume: bool = True) -> float:
        wait = await self._script(
            keys=[self._prefix + key],
            args=[self._now(), window, limit, "1" if consume else "0", secrets.token_hex(8)],
        )
        return float(wait)

    async def acquire(self, key: str, limit: int) -> bool:
        name = self._prefix + "open:" + key
        async with self._redis.pipeline(transaction=True) as pipe:
            count, _ = await pipe.incr(name).expire(name, _OPEN_TTL_SECONDS).execute()
        if count > limit:
            await self._redis.decr(name)
            return False
        return True

    async def release(self, key: str) -> None:
        await self._redis.decr(self._prefix + "open:" + key)

    async def aclose(self) -> None:
        await self._redis.aclose()


def make_limiter(settings: Settings) -> Limiter:
    return RedisLimiter(settings.redis_url) if settings.redis_url else MemoryLimiter()


@dataclass
class ChatLimits:
    """The public chat's limits, named, with the numbers from the settings."""

    limiter: Limiter
    settings: Settings

    async def message(self, conversation_id: str) -> None:
        """Count one shopper message; ``RateLimited`` past the per-minute limit."""
        wait = await self.limiter.hit(
            f"msg:{conversation_id}", self.settings.limit_messages_per_minute, 60
        )
        if wait:
            raise RateLimited("messages", wait)

    async def conversation_started(self, *, visitor_id: str, ip: str) -> None:
        for key, limit in self._conversation_keys(visitor_id, ip):
            await self.limiter.hit(key, limit, 3600)

    async def conversation_wait(self, *, visitor_id: str | None, ip: str) -> float:
        """0 if a new conversation may be started now, else seconds to wait (nothing is
        counted: ``conversation_started`` counts one that was)."""
        waits = [
            await self.limiter.hit(key, limit, 3600, consume=False)
            for key, limit in self._conversation_keys(visitor_id, ip)
        ]
        return max(waits, default=0.0)

    def _conversation_keys(self, visitor_id: str | None, ip: str) -> list[tuple[str, int]]:
        keys = [(f"conv-ip:{ip}", self.settings.limit_new_conversations_per_ip_hour)]
        if visitor_id:
            keys.append(
                (
                    f"conv-visitor:{visitor_id}",
                    self.settings.limit_new_conversations_per_visitor_hour,
                )
            )
        return keys

    async def open_socket(self, ip: str) -> bool:
        return await self.limiter.acquire(f"sock:{ip}", self.settings.limit_sockets_per_ip)

    async def close_socket(self, ip: str) -> None:
        # A lost decrement (Redis gone) expires with its key.
        with contextlib.suppress(Exception):
            await asyncio.shield(self.limiter.release(f"sock:{ip}"))
