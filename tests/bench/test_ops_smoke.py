"""`make bench-ops` at a small size on the test PostgreSQL and on SQLite, so CI exercises the
generator, the search index built from it, every timed case and the verdicts."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.postgres import create_database


def _bench() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "bench" / "ops.py"
    spec = importlib.util.spec_from_file_location("bench_ops", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _check(figures: object, messages: int) -> None:
    bench = sys.modules["bench_ops"]
    assert figures.messages == messages and figures.conversations == messages // 10  # type: ignore[attr-defined]
    cases = figures.cases  # type: ignore[attr-defined]
    assert set(cases) == {*bench._cases(0), "list: page 21 (keyset)"}
    for name, case in cases.items():
        assert 0 < case["p50_ms"] <= case["p95_ms"], name
    assert cases["list (first page, no filter)"]["matches"] == messages // 10
    # Every filter selects something in the generated data, and search finds both languages.
    assert all(case["matches"] > 0 for name, case in cases.items() if name.startswith("filter")), (
        cases
    )
    assert figures.search_hits["search zh"] > 0 and figures.search_hits["search en"] > 0  # type: ignore[attr-defined]
    assert set(figures.verdicts()) >= set(cases)  # type: ignore[attr-defined]


@pytest.mark.postgres
def test_bench_ops_small_on_postgresql(postgres_server: str) -> None:
    bench = _bench()
    url = create_database(postgres_server, "kefu_bench_ops")
    lines: list[str] = []
    figures = bench.run(url, messages=20_000, samples=6, out=lines.append)
    _check(figures, 20_000)
    assert any("target p95 < 300 ms" in line for line in lines)


def test_bench_ops_small_on_sqlite(tmp_path: Path) -> None:
    bench = _bench()
    figures = bench.run(
        f"sqlite:///{tmp_path / 'bench.db'}", messages=10_000, samples=6, out=lambda _: None
    )
    _check(figures, 10_000)
