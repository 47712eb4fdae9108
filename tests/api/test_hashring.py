from __future__ import annotations

from collections import Counter

from api.hashring import HashRing

SERVERS = [f"http://127.0.0.1:{5005 + i}" for i in range(3)]
KEYS = [f"conversation-{i}" for i in range(3000)]


def test_a_conversation_always_goes_to_the_same_server() -> None:
    ring = HashRing(SERVERS)
    assert all(ring.node_for(k) == HashRing(list(reversed(SERVERS))).node_for(k) for k in KEYS)


def test_load_is_spread() -> None:
    counts = Counter(HashRing(SERVERS).node_for(k) for k in KEYS)
    assert set(counts) == set(SERVERS)
    assert min(counts.values()) > len(KEYS) / len(SERVERS) * 0.7


def test_adding_a_server_moves_about_one_in_n() -> None:
    before = HashRing(SERVERS)
    after = HashRing([*SERVERS, "http://127.0.0.1:5099"])
    moved = [k for k in KEYS if before.node_for(k) != after.node_for(k)]
    assert all(after.node_for(k) == "http://127.0.0.1:5099" for k in moved)
    assert 0.15 < len(moved) / len(KEYS) < 0.35


def test_one_server() -> None:
    ring = HashRing(["http://127.0.0.1:5005"])
    assert {ring.node_for(k) for k in KEYS[:50]} == {"http://127.0.0.1:5005"}
