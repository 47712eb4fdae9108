"""Consistent hashing of conversations onto Rasa servers.

Every conversation goes to one server (its tracker and lock live there); adding or removing
a server moves only about 1/n of the conversations.
"""

from __future__ import annotations

import bisect
import hashlib


def _point(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")


class HashRing:
    def __init__(self, nodes: list[str], *, replicas: int = 128) -> None:
        if not nodes:
            raise ValueError("a hash ring needs at least one node")
        ring = sorted((_point(f"{node}#{i}"), node) for node in nodes for i in range(replicas))
        self._points = [p for p, _ in ring]
        self._nodes = [n for _, n in ring]

    def node_for(self, key: str) -> str:
        index = bisect.bisect(self._points, _point(key)) % len(self._points)
        return self._nodes[index]
