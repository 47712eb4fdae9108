"""`make bench-crm` at 1/1000 size on the test PostgreSQL, so CI exercises the generator,
both recomputes, the look-ups and the segment counts."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.postgres import create_database

pytestmark = pytest.mark.postgres


def _bench() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "bench" / "crm.py"
    spec = importlib.util.spec_from_file_location("bench_crm", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_bench_crm_at_one_thousandth(postgres_server: str) -> None:
    bench = _bench()
    url = create_database(postgres_server, "kefu_bench_crm")
    lines: list[str] = []
    figures = bench.run(url, scale=0.001, lookups=200, out=lines.append)
    assert figures.customers == 2000
    planted = len(range(7, 2001, 5))  # every 5th customer bought the shirt and tie
    assert figures.orders == 10_000 + planted + len(range(7, 2001, 10))  # half the jacket
    assert figures.order_items > figures.orders
    assert figures.rfm_customers > 1500
    assert figures.rules > 0
    assert figures.navy_recommended  # a planted shirt-and-tie buyer is offered the jacket
    assert figures.navy_segment_count >= planted // 3  # the half without the jacket, mostly
    assert 0 < figures.profile_p50_ms <= figures.profile_p95_ms
    assert 0 < figures.turn_p50_ms <= figures.turn_p95_ms
    assert any("recording a turn" in line for line in lines)
    assert figures.peak_memory_mb > 0
    assert any("RFM recompute" in line for line in lines)
