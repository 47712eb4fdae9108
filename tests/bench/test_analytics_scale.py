"""The analytics dashboard at scale: messages made inside the database (a recursive CTE on
SQLite, generate_series on PostgreSQL), then ``analytics.dashboard`` timed for the default
14 days and for 90 days.

By default a smoke size (20,000 messages) so CI exercises the generator and the queries;
``KEFU_BENCH_MESSAGES=1000000`` is the size the issue asks about, where the 14-day dashboard
must take under 2 s:

    KEFU_BENCH_MESSAGES=1000000 .venv-app/bin/python -m pytest -q -s -p no:cacheprovider \\
        tests/bench/test_analytics_scale.py

The data: 90 days of conversations, ten messages each (shopper and bot turns in turn, the
last two an agent's in every eighth conversation, which has a handoff — assigned, answered,
handed back — and a satisfaction answer), intents cycling over 20 names, confidences spread
over [0, 1).
"""

# The generator's SQL is assembled from this module's constants only, never from input.
# ruff: noqa: S608

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot.cli import migrate
from bot.db import make_engine
from bot.services import analytics
from tests.support.postgres import create_database

MESSAGES = int(os.environ.get("KEFU_BENCH_MESSAGES", "20000"))
PER_CONVERSATION = 10
DAYS = 90
TZ = "Asia/Shanghai"
START = datetime(2027, 1, 1, tzinfo=timezone.utc)
INTENTS = (
    *("order_status", "shipping_delay", "shipping_info", "cancel_order", "modify_order"),
    *("return_refund", "exchange", "product_question", "product_recommendation"),
    *("coupon_promotion", "payment_issue", "invoice", "membership_points", "complaint"),
    *("human_agent", "out_of_scope", "greet", "thank", "goodbye", "nlu_fallback"),
)
AGENTS = 10


def _fill(engine: sa.Engine, messages: int) -> None:
    conversations = messages // PER_CONVERSATION
    spacing = DAYS * 86400 / conversations  # seconds between conversations
    postgres = engine.dialect.name == "postgresql"
    whens = " ".join(f"WHEN {k} THEN '{name}'" for k, name in enumerate(INTENTS))
    pick = f"CASE ({{x}}) % {len(INTENTS)} {whens} END"
    if postgres:
        series = "SELECT generate_series(1, :n) AS i"
        at = "(TIMESTAMPTZ '2027-01-01 00:00:00+00' + make_interval(secs => {s}))"
        uid = "lpad(({x})::text, 32, '0')"
    else:
        series = "SELECT 1 AS i UNION ALL SELECT i + 1 FROM s WHERE i < :n"
        at = "strftime('%Y-%m-%d %H:%M:%f000', '2027-01-01 00:00:00', '+' || ({s}) || ' seconds')"
        uid = "printf('%032d', {x})"
    cte = "WITH RECURSIVE s(i) AS ({series}) " if not postgres else "WITH s(i) AS ({series}) "
    started = f"CAST(i * {spacing} AS INTEGER)"
    with engine.begin() as db:
        for k in range(AGENTS):
            db.execute(
                sa.text(
                    "INSERT INTO staff (email, name, role, password_hash, active, created_at,"
                    " password_changed_at) VALUES (:e, :n, 'agent', 'x', :t, :at, :at)"
                ),
                {"e": f"bench-agent-{k}@kefu.test", "n": f"Bench {k}", "t": True, "at": START},
            )
        first_staff = db.scalar(sa.text("SELECT min(id) FROM staff WHERE email LIKE 'bench-%'"))
        db.execute(
            sa.text("INSERT INTO visitor (id, created_at) VALUES ('bench-visitor', :at)"),
            {"at": START},
        )
        db.execute(
            sa.text(
                cte.format(series=series)
                + "INSERT INTO conversation (id, visitor_id, state, language, needs_human,"
                " created_at, last_message_at) SELECT "
                + uid.format(x="i")
                + ", 'bench-visitor', 'closed', 'zh', :f, "
                + at.format(s=started)
                + ", "
                + at.format(s=f"{started} + 200")
                + " FROM s"
            ),
            {"n": conversations, "f": False},
        )
        # Message j of conversation i: j = 0..9; even j the shopper's, odd the bot's; in every
        # eighth conversation j = 8, 9 are an agent's.
        n = conversations * PER_CONVERSATION
        conv = f"(1 + (i - 1) / {PER_CONVERSATION})"
        j = f"((i - 1) % {PER_CONVERSATION})"
        agent_turn = f"({conv} % 8 = 0 AND {j} >= 8)"
        role = f"CASE WHEN {agent_turn} THEN 'agent' WHEN {j} % 2 = 0 THEN 'shopper' ELSE 'bot' END"
        shopper = f"({j} % 2 = 0 AND NOT {agent_turn})"
        db.execute(
            sa.text(
                cte.format(series=series)
                + "INSERT INTO message (uid, conversation_id, role, text, status, intent,"
                " confidence, created_at) SELECT "
                + uid.format(x="i")
                + ", "
                + uid.format(x=conv)
                + f", {role}, '…', 'done', CASE WHEN {shopper} THEN "
                + pick.format(x=f"{conv} + {j}")
                + f" END, CASE WHEN {shopper} THEN (((i % 1000) * 7919) % 1000) / 1000.0 END, "
                + at.format(s=f"CAST({conv} * {spacing} AS INTEGER) + {j} * 20")
                + " FROM s"
            ),
            {"n": n},
        )
        db.execute(
            sa.text(
                "INSERT INTO agent_message (message_id, staff_id) SELECT m.id, :first + "
                f"(CAST(m.conversation_id AS INTEGER) % {AGENTS}) FROM message m "
                "WHERE m.role = 'agent'"
            ),
            {"first": first_staff},
        )
        handoffs = conversations // 8
        c = "(i * 8)"
        db.execute(
            sa.text(
                cte.format(series=series)
                + "INSERT INTO handoff (conversation_id, reason, state, vip, requested_at,"
                " sort_at, agent_id, assigned_at, ended_at, outcome) SELECT "
                + uid.format(x=c)
                + ", CASE WHEN i % 3 = 0 THEN 'complaint' ELSE 'requested' END, 'ended', :f, "
                + at.format(s=f"CAST({c} * {spacing} AS INTEGER) + 130")
                + ", "
                + at.format(s=f"CAST({c} * {spacing} AS INTEGER) + 130")
                + f", :first + ({c} % {AGENTS}), "
                + at.format(s=f"CAST({c} * {spacing} AS INTEGER) + 150")
                + ", "
                + at.format(s=f"CAST({c} * {spacing} AS INTEGER) + 400")
                + ", 'handed_back' FROM s"
            ),
            {"n": handoffs, "f": False, "first": first_staff},
        )
        db.execute(
            sa.text(
                "INSERT INTO csat (conversation_id, handoff_id, agent_id, score, state, asked_at)"
                " SELECT conversation_id, id, agent_id, 1 + id % 5, 'done', ended_at FROM handoff"
                " WHERE conversation_id <> ''"
            )
        )
    with engine.begin() as db:
        db.execute(sa.text("ANALYZE"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def filled(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'bench.db'}"
    else:
        url = create_database(request.getfixturevalue("postgres_server"), "kefu_bench_analytics")
    migrate(url)
    engine = make_engine(url)
    started = time.perf_counter()
    _fill(engine, MESSAGES)
    print(f"\n{request.param}: {MESSAGES:,} messages made in {time.perf_counter() - started:.1f} s")
    yield engine
    engine.dispose()


def _timed(engine: sa.Engine, start: date, end: date) -> tuple[float, dict[str, object]]:
    best = float("inf")
    board: dict[str, object] = {}
    for _ in range(3):
        with Session(engine) as session:
            began = time.perf_counter()
            board = analytics.dashboard(session, start=start, end=end, tz=TZ)
            best = min(best, time.perf_counter() - began)
    return best, board


def test_dashboard_at_scale(filled: sa.Engine) -> None:
    with filled.connect() as db:
        assert db.scalar(sa.text("SELECT count(*) FROM message")) == MESSAGES
    last = (START + timedelta(days=DAYS - 1)).astimezone(analytics._zone(TZ)).date()
    fortnight, board = _timed(filled, last - timedelta(days=13), last)
    quarter, _ = _timed(filled, last - timedelta(days=DAYS - 1), last)
    kpi = board["kpi"]
    assert isinstance(kpi, dict)
    share = 14 / DAYS
    expected = MESSAGES // PER_CONVERSATION * share
    assert abs(kpi["conversations"] - expected) <= expected * 0.1 + 2
    assert kpi["handoff_rate"] == pytest.approx(1 / 8, abs=0.02)
    # Assigned 150 s after the conversation began, the agent's first line at 160 s.
    assert kpi["fast_rate"] == 1.0 and kpi["median_first_response_s"] == 10.0
    print(
        f"{filled.dialect.name}: {MESSAGES:,} messages; dashboard 14 days {fortnight * 1000:.0f} ms,"
        f" 90 days {quarter * 1000:.0f} ms (best of 3)"
    )
    if MESSAGES >= 1_000_000:
        assert fortnight < 2.0
