"""Turn latency through the gateway, next to the same turns sent straight to Rasa.

Starts the real stack (Rasa, action server, API) on loopback with a fresh database, then
sends the same conversation script N times both ways, alternating, so both see the same
machine load. Prints p50/p95/mean per path, the gateway's overhead, and each process's
resident memory. Run with ``make bench`` (``KEFU_BENCH_ROUNDS`` sets N, default 30).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.chat_client import ChatClient  # noqa: E402
from tests.support.stack import Stack  # noqa: E402

SCRIPT = ("你好", "我的订单到哪了", "hello", "where is my order?", "谢谢", "今天天气怎么样")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def rss_mb(pid: int) -> float:
    total = 0.0
    for child in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{child}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


def _children(pid: int) -> list[int]:
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    result = [int(k) for k in kids]
    for kid in list(result):
        result.extend(_children(kid))
    return result


async def via_gateway(stack: Stack, token: str) -> list[float]:
    client = ChatClient(stack.api_url)
    await client.connect(customer_token=token)
    timings = []
    for text in SCRIPT:
        start = time.perf_counter()
        replies = await client.say(text)
        timings.append((time.perf_counter() - start) * 1000)
        assert replies, text
    await client.close()
    return timings


async def direct(stack: Stack, http: httpx.AsyncClient, customer_id: int) -> list[float]:
    sender = uuid.uuid4().hex
    timings = []
    for text in SCRIPT:
        start = time.perf_counter()
        response = await http.post(
            f"{stack.rasa_url}/webhooks/kefu/turn",
            json={
                "sender": sender,
                "message_id": uuid.uuid4().hex,
                "text": text,
                "metadata": {"customer_id": customer_id, "language": "zh"},
            },
        )
        timings.append((time.perf_counter() - start) * 1000)
        assert response.json()["replies"], text
    return timings


def report(name: str, values: list[float]) -> None:
    print(
        f"  {name:<22} n={len(values):<4} p50={percentile(values, 0.5):7.1f} ms  "
        f"p95={percentile(values, 0.95):7.1f} ms  mean={statistics.mean(values):7.1f} ms"
    )


async def main() -> int:
    rounds = int(os.environ.get("KEFU_BENCH_ROUNDS", "30"))
    with tempfile.TemporaryDirectory(prefix="kefu-bench-") as tmp:
        stack = Stack(Path(tmp))
        started = time.perf_counter()
        stack.start()
        print(f"stack ready in {time.perf_counter() - started:.1f} s (model {stack.model.name})")
        engine = sa.create_engine(stack.database_url)
        with engine.connect() as conn:
            customer_id = conn.execute(
                sa.text("SELECT id FROM customer WHERE external_id = 'C00001'")
            ).scalar_one()
        engine.dispose()
        token = stack.customer_token("C00001")
        gateway: list[float] = []
        straight: list[float] = []
        try:
            async with httpx.AsyncClient(timeout=30) as http:
                for _ in range(rounds):
                    gateway += await via_gateway(stack, token)
                    straight += await direct(stack, http, customer_id)
            print(
                f"\nturn latency, {rounds} rounds of {len(SCRIPT)} turns "
                "(zh/en: greet, order status with the action server and database, "
                "thanks, out of scope):"
            )
            report("gateway (WebSocket)", gateway)
            report("straight to Rasa", straight)
            overhead50 = percentile(gateway, 0.5) - percentile(straight, 0.5)
            overhead95 = percentile(gateway, 0.95) - percentile(straight, 0.95)
            print(f"  gateway overhead       p50={overhead50:+7.1f} ms  p95={overhead95:+7.1f} ms")
            print("\nresident memory after the run:")
            for name, proc in stack.procs.items():
                print(f"  {name:<8} {rss_mb(proc.pid):7.1f} MB")
        finally:
            stack.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
