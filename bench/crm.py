"""CRM at scale on PostgreSQL: 2,000,000 customers and 10,000,000 orders, made inside the
database with generate_series, then the figures issue 7 asks for.

Measures: profile look-up p50/p95 (one query: customer by the store's id, RFM, tags, five
latest orders, three latest conversations), recording a turn p50/p95 (the gateway's two
commits per shopper message: the message stored before acting, then its NLU result, the
bot's reply and the customer's turn tags), recommendation look-up p95, segment counts, the RFM
recompute, the co-purchase recompute, and this process's peak memory (ru_maxrss; the
database server's own memory is not counted). ``--scale 0.001`` is the smoke size CI runs.

    make bench-crm                                     # full size, a temporary PostgreSQL
    .venv-app/bin/python bench/crm.py --scale 0.01     # 20,000 customers, 100,000 orders
    .venv-app/bin/python bench/crm.py --url postgresql+psycopg://…/empty_db

The data: a catalogue of 120 products × 5 colours × 4 sizes (P-OXF Oxford shirt, P-SLK silk
tie and P-BLZ navy blazer among them), orders of one or two random items from uniformly
random customers over a year, and the marketing pattern planted in 1% of the customers (a
blue P-OXF and a red P-SLK; half of them later the navy P-BLZ; more in small runs). A quarter of the customers
have a conversation (two messages, one with an intent); a tenth have a tag.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The API's search-index hook, so a turn here writes what it writes there.
import bot.search  # noqa: E402,F401
from bot.cli import migrate  # noqa: E402
from bot.db import make_engine  # noqa: E402
from bot.models import Customer  # noqa: E402
from bot.services import recommendations, rfm, segments  # noqa: E402
from bot.services.conversations import (  # noqa: E402
    Reply,
    TurnOutcome,
    record_inbound,
    record_turn,
    start_session,
)

FULL_CUSTOMERS = 2_000_000
FULL_ORDERS = 10_000_000
PRODUCTS = 120
COLOURS = ("blue", "red", "navy", "white", "black")
SIZES = ("S", "M", "L", "XL")
CATEGORIES = ("shirt", "tie", "jacket", "trousers", "shoes", "accessory")
NAMED = {1: ("P-OXF", "shirt"), 2: ("P-SLK", "tie"), 3: ("P-BLZ", "jacket")}
# Intents of the domain (INTENTS.md), so the planner sees the distribution a store would have.
INTENTS = (
    "order_status", "complaint", "return_refund", "shipping_delay", "coupon_promotion", "thank"
)  # fmt: skip
TARGETS = {
    "profile_p95_ms": 5.0,
    "turn_p95_ms": 10.0,
    "segment_count_s": 5.0,
    "rfm_recompute_s": 300.0,
    "rules_recompute_s": 300.0,
}
NAVY_SEGMENT = {
    "all": [
        {"bought": {"product": "P-OXF", "colour": "blue"}},
        {"bought": {"product": "P-SLK", "colour": "red"}},
        {"never_bought": {"product": "P-BLZ"}},
    ]
}
BUSY_SEGMENT = {
    "all": [
        {"rfm": {"r": {"min": 4}, "m": {"min": 4}}},
        {"any": [{"tag": "vip"}, {"membership": ["gold", "vip"]}]},
        {"intent": "complaint"},
        {"language": "zh"},
    ]
}


def _variant(product: int, colour: str, size: str = "M") -> int:
    """Variant ids are laid out product by product, colour by colour, size by size."""
    return (product - 1) * 20 + COLOURS.index(colour) * 4 + SIZES.index(size) + 1


GENERATE = [
    # The catalogue.
    """
    INSERT INTO product (id, external_id, name_zh, name_en, category, customised)
    SELECT p, CASE p WHEN 1 THEN 'P-OXF' WHEN 2 THEN 'P-SLK' WHEN 3 THEN 'P-BLZ'
                     ELSE 'P-' || lpad(p::text, 4, '0') END,
           '商品' || p, 'Product ' || p,
           CASE p WHEN 1 THEN 'shirt' WHEN 2 THEN 'tie' WHEN 3 THEN 'jacket'
                  ELSE (ARRAY['shirt','tie','jacket','trousers','shoes','accessory'])[1 + p % 6] END,
           false
    FROM generate_series(1, :products) p
    """,
    """
    INSERT INTO variant (id, sku, product_id, size, colour, price_fen, stock)
    SELECT v, 'SKU-' || v, 1 + (v - 1) / 20,
           (ARRAY['S','M','L','XL'])[1 + (v - 1) % 4],
           (ARRAY['blue','red','navy','white','black'])[1 + ((v - 1) / 4) % 5],
           (100 + ((1 + (v - 1) / 20) * 37) % 900) * 100, 10
    FROM generate_series(1, :products * 20) v
    """,
    # Customers.
    """
    INSERT INTO customer (id, external_id, name, language, membership_level, points, created_at)
    SELECT i, 'B' || lpad(i::text, 8, '0'), '顾客' || i,
           CASE WHEN i % 5 = 0 THEN 'en' ELSE 'zh' END,
           CASE WHEN i % 100 < 3 THEN 'vip' WHEN i % 100 < 12 THEN 'gold'
                WHEN i % 100 < 30 THEN 'silver' ELSE 'regular' END,
           (i::bigint * 7919) % 8000, :now - make_interval(days => i % 900)
    FROM generate_series(1, :customers) i
    """,
    # Orders: one or two random items each; then the planted pattern.
    """
    CREATE TEMP TABLE gen_order ON COMMIT DROP AS
    SELECT i AS id, 1 + floor(random() * :customers)::int AS customer_id,
           1 + floor(random() * :products * 20)::int AS v1,
           CASE WHEN random() < 0.5 THEN 1 + floor(random() * :products * 20)::int END AS v2,
           random() AS r, :now - make_interval(secs => random() * 365 * 86400) AS placed_at
    FROM generate_series(1, :orders) i
    """,
    """
    INSERT INTO gen_order (id, customer_id, v1, v2, r, placed_at)
    SELECT :orders + row_number() OVER (), c, v1, v2, 0.5, :now - make_interval(days => 30 + c % 200)
    FROM (
        SELECT i AS c, :oxf_blue AS v1, :slk_red AS v2
        FROM generate_series(7, :customers, :step) i
        UNION ALL
        SELECT i, :blz_navy, NULL FROM generate_series(7, :customers, 2 * :step) i
    ) planted
    """,
    """
    INSERT INTO "order" (id, order_number, customer_id, status, total_fen, phone, address,
                         placed_at, paid_at)
    SELECT g.id, 'B' || g.id, g.customer_id,
           CASE WHEN g.r < 0.03 THEN 'cancelled' WHEN g.r < 0.05 THEN 'refunded'
                WHEN g.r < 0.08 THEN 'shipped' ELSE 'delivered' END,
           a.price_fen + coalesce(b.price_fen, 0), '13800000000', '上海市', g.placed_at,
           g.placed_at
    FROM gen_order g JOIN variant a ON a.id = g.v1 LEFT JOIN variant b ON b.id = g.v2
    """,
    """
    INSERT INTO order_item (id, order_id, variant_id, quantity, unit_price_fen)
    SELECT 2 * g.id - 1, g.id, g.v1, 1, v.price_fen FROM gen_order g JOIN variant v ON v.id = g.v1
    UNION ALL
    SELECT 2 * g.id, g.id, g.v2, 1, v.price_fen FROM gen_order g JOIN variant v ON v.id = g.v2
    """,
    # Conversations for a quarter of the customers, tags for a tenth.
    """
    INSERT INTO visitor (id, customer_id, created_at, last_seen_at)
    SELECT 'bv' || i, i, :now - make_interval(days => i % 200), :now - make_interval(days => i % 200)
    FROM generate_series(4, :customers, 4) i
    """,
    """
    INSERT INTO conversation (id, visitor_id, customer_id, state, language, needs_human,
                              created_at, last_message_at)
    SELECT 'bc' || i, 'bv' || i, i, 'closed', 'zh', false,
           :now - make_interval(days => i % 200), :now - make_interval(days => i % 200)
    FROM generate_series(4, :customers, 4) i
    """,
    """
    INSERT INTO message (uid, conversation_id, role, text, status, intent, confidence,
                         created_at)
    SELECT 'bm' || i || '-' || k, 'bc' || i, CASE k WHEN 1 THEN 'shopper' ELSE 'bot' END,
           'text', 'done', CASE k WHEN 1 THEN (ARRAY[:intents])[1 + (i / 4) % 6] END,
           CASE k WHEN 1 THEN 0.9 END, :now - make_interval(days => i % 200)
    FROM generate_series(4, :customers, 4) i, generate_series(1, 2) k
    """,
    """
    INSERT INTO customer_tag (customer_id, tag, source, created_at)
    SELECT i, CASE WHEN i % 30 = 0 THEN 'vip' WHEN i % 20 = 0 THEN 'complainer'
                   ELSE 'interested:shirt' END, 'bot_rule', :now
    FROM generate_series(10, :customers, 10) i
    """,
]
SEQUENCES = ("product", "variant", "customer", "order", "order_item")


@dataclass
class Figures:
    scale: float
    customers: int
    orders: int
    order_items: int
    generate_s: float
    rfm_recompute_s: float
    rfm_customers: int
    rules_recompute_s: float
    rules: int
    profile_p50_ms: float
    profile_p95_ms: float
    turn_p50_ms: float
    turn_p95_ms: float
    recommend_p95_ms: float
    navy_segment_count: int
    navy_segment_count_s: float
    busy_segment_count: int
    busy_segment_count_s: float
    navy_recommended: bool
    peak_memory_mb: float

    def verdicts(self) -> dict[str, bool]:
        return {
            "profile_p95_ms": self.profile_p95_ms < TARGETS["profile_p95_ms"],
            "turn_p95_ms": self.turn_p95_ms < TARGETS["turn_p95_ms"],
            "segment_count_s": max(self.navy_segment_count_s, self.busy_segment_count_s)
            < TARGETS["segment_count_s"],
            "rfm_recompute_s": self.rfm_recompute_s < TARGETS["rfm_recompute_s"],
            "rules_recompute_s": self.rules_recompute_s < TARGETS["rules_recompute_s"],
        }


def _timed(work: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = work()
    return result, time.perf_counter() - start


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


PROFILE = sa.text("""
    SELECT c.id, c.name, c.language, c.membership_level, r.r_score, r.f_score, r.m_score,
      (SELECT coalesce(json_agg(t.tag), '[]') FROM customer_tag t
        WHERE t.customer_id = c.id) AS tags,
      (SELECT coalesce(json_agg(o), '[]') FROM (
         SELECT order_number, status, placed_at, total_fen FROM "order"
          WHERE customer_id = c.id ORDER BY placed_at DESC LIMIT 5) o) AS orders,
      (SELECT coalesce(json_agg(v), '[]') FROM (
         SELECT id, last_message_at FROM conversation
          WHERE customer_id = c.id ORDER BY last_message_at DESC LIMIT 3) v) AS conversations
    FROM customer c LEFT JOIN customer_rfm r ON r.customer_id = c.id
    WHERE c.external_id = :external_id
""")


def profile(session: Session, external_id: str) -> dict[str, Any]:
    """The customer profile an agent or the bot looks up, in one round trip: the customer
    by the store's id, RFM scores, tags, five latest orders, three latest conversations
    (each part by an index: customer.external_id, customer_rfm's key, customer_tag,
    ix_order_customer_placed, ix_conversation_customer)."""
    row = session.execute(PROFILE, {"external_id": external_id}).mappings().one()
    return dict(row)


TURN_INTENTS = ("order_status", "shipping_delay", "complaint", "greet", "thank")


def record_turns(session_factory: Callable[[], Session], external_ids: list[str]) -> list[float]:
    """Each customer opens a conversation (not timed), then sends two messages; each timed
    message is what the gateway commits for it: ``record_inbound`` (stored before anything
    acts on it), then ``record_turn`` (NLU result, one reply, turn tags), two transactions."""
    conversations: list[str] = []
    with session_factory() as session:
        for external_id in external_ids:
            chat = start_session(session=session, visitor_id=None, customer_external_id=external_id)
            conversations.append(chat.conversation_id)
        session.commit()
    timings: list[float] = []
    for n in range(2 * len(conversations)):
        conversation_id = conversations[n % len(conversations)]
        intent = TURN_INTENTS[n % len(TURN_INTENTS)]
        start = time.perf_counter()
        with session_factory() as session:
            inbound = record_inbound(
                session=session, conversation_id=conversation_id, client_msg_id=f"b{n}",
                text="我的快递怎么还没到", sentiment=-0.1,
            )  # fmt: skip
            session.commit()
            message_id = inbound.message.id
        with session_factory() as session:
            record_turn(
                session=session, message_id=message_id,
                outcome=TurnOutcome(
                    replies=[Reply("您的订单已发货，预计明天送达。")], intent=intent,
                    confidence=0.93, language="zh", actions=["action_order_status"],
                ),
            )  # fmt: skip
            session.commit()
        timings.append((time.perf_counter() - start) * 1000)
    return timings


def planted_step(customers: int) -> int:
    """Every n-th customer carries the pattern: 1% at full size, more in a small run so the
    rule still has the customers it needs (``MIN_OFFER_CUSTOMERS``)."""
    return max(5, min(100, customers // 400))


def generate(engine: sa.Engine, *, customers: int, orders: int, now: datetime) -> float:
    params = {
        "step": planted_step(customers),
        "products": PRODUCTS,
        "customers": customers,
        "orders": orders,
        "now": now,
        "oxf_blue": _variant(1, "blue"),
        "slk_red": _variant(2, "red"),
        "blz_navy": _variant(3, "navy"),
    }
    intents = ", ".join(f"'{i}'" for i in INTENTS)  # constants of this file, not input
    start = time.perf_counter()
    with engine.begin() as conn:
        # Loading into empty tables: foreign keys are checked by construction here, not per
        # row by triggers (needs a superuser, which a bench database's owner usually is).
        try:
            with conn.begin_nested():
                conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        except sa.exc.DBAPIError:
            pass
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
        for statement in GENERATE:
            conn.execute(sa.text(statement.replace(":intents", intents)), params)
        for table in SEQUENCES:  # names from this file
            sql = f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), (SELECT max(id) FROM \"{table}\"))"  # noqa: S608
            conn.exec_driver_sql(sql)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
    return time.perf_counter() - start


def run(
    url: str, *, scale: float = 1.0, lookups: int = 2000, out: Callable[[str], None] = print
) -> Figures:
    """Migrate the (empty) database at ``url``, fill it at ``scale``, and measure."""
    customers = max(1000, round(FULL_CUSTOMERS * scale))
    orders = max(5000, round(FULL_ORDERS * scale))
    now = datetime.now(timezone.utc).replace(microsecond=0)
    migrate(url)
    engine = make_engine(url)
    out(f"generating {customers:,} customers and {orders:,} orders …")
    generate_s = generate(engine, customers=customers, orders=orders, now=now)
    with engine.connect() as conn:
        n_orders = conn.scalar(sa.text('SELECT count(*) FROM "order"'))
        n_items = conn.scalar(sa.text("SELECT count(*) FROM order_item"))
    out(f"  generated in {generate_s:.1f} s ({n_orders:,} orders, {n_items:,} items)")

    with Session(engine) as session:
        rfm_customers, rfm_s = _timed(lambda: rfm.recompute_rfm(session=session))
        session.commit()
    out(f"RFM recompute: {rfm_s:.1f} s for {rfm_customers:,} customers")
    with Session(engine) as session:
        report, rules_s = _timed(lambda: recommendations.recompute_rules(session=session))
        session.commit()
    out(f"co-purchase recompute: {rules_s:.1f} s, {report.rules:,} rules")
    # The recomputes rewrote millions of rows: let the database settle (as autovacuum would
    # long before the next conversation in a real store) so it is not what the timings see.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE customer_rfm, product_association, product_popularity")

    rng = random.Random(7)
    ids = [f"B{rng.randint(1, customers):08d}" for _ in range(lookups)]
    profile_ms: list[float] = []
    recommend_ms: list[float] = []
    with Session(engine) as session:
        for external_id in ids[:50]:  # warm the connection and the caches a little
            profile(session, external_id)
        for external_id in ids:
            start = time.perf_counter()
            profile(session, external_id)
            profile_ms.append((time.perf_counter() - start) * 1000)
        id_of: dict[str, int] = {
            e: i
            for e, i in session.execute(
                sa.select(Customer.external_id, Customer.id).where(Customer.external_id.in_(ids))
            )
        }
        for external_id in ids[: max(100, lookups // 4)]:
            start = time.perf_counter()
            recommendations.recommend_for_customer(session=session, customer_id=id_of[external_id])
            recommend_ms.append((time.perf_counter() - start) * 1000)
        # A planted customer (bought the shirt and tie, not the jacket) is offered the jacket.
        planted = f"B{7 + planted_step(customers):08d}"  # the shirt and tie, not the jacket
        planted_id = session.scalar(sa.select(Customer.id).where(Customer.external_id == planted))
        offers = recommendations.recommend_for_customer(
            session=session, customer_id=planted_id or 0
        )
        navy_recommended = "P-BLZ" in [o.product for o in offers]
        turn_ids = ids[: max(100, lookups // 4)]
    record_turns(lambda: Session(engine), turn_ids[:10])  # warm up
    turn_ms = record_turns(lambda: Session(engine), turn_ids)
    with Session(engine) as session:
        navy, navy_s = _timed(lambda: segments.count_members(session=session, rule=NAVY_SEGMENT))
        busy, busy_s = _timed(lambda: segments.count_members(session=session, rule=BUSY_SEGMENT))
    out(f"profile look-up: p50 {statistics.median(profile_ms):.2f} ms, "
        f"p95 {_percentile(profile_ms, 0.95):.2f} ms ({len(profile_ms)} look-ups)")  # fmt: skip
    out(f"recording a turn: p50 {statistics.median(turn_ms):.2f} ms, "
        f"p95 {_percentile(turn_ms, 0.95):.2f} ms ({len(turn_ms)} turns)")  # fmt: skip
    out(f"navy-jacket segment: {navy:,} customers in {navy_s:.2f} s; "
        f"busy segment: {busy:,} in {busy_s:.2f} s")  # fmt: skip
    engine.dispose()
    return Figures(
        scale=scale,
        customers=customers,
        orders=int(n_orders or 0),
        order_items=int(n_items or 0),
        generate_s=round(generate_s, 2),
        rfm_recompute_s=round(rfm_s, 2),
        rfm_customers=rfm_customers,
        rules_recompute_s=round(rules_s, 2),
        rules=report.rules,
        profile_p50_ms=round(statistics.median(profile_ms), 3),
        profile_p95_ms=round(_percentile(profile_ms, 0.95), 3),
        turn_p50_ms=round(statistics.median(turn_ms), 3),
        turn_p95_ms=round(_percentile(turn_ms, 0.95), 3),
        recommend_p95_ms=round(_percentile(recommend_ms, 0.95), 3),
        navy_segment_count=navy,
        navy_segment_count_s=round(navy_s, 3),
        busy_segment_count=busy,
        busy_segment_count_s=round(busy_s, 3),
        navy_recommended=navy_recommended,
        peak_memory_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1 = 2M customers, 10M orders")
    parser.add_argument("--url", help="an empty PostgreSQL database (default: a temporary one)")
    parser.add_argument("--lookups", type=int, default=2000, help="profile look-ups to time")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args(argv)
    server = None
    url = args.url
    if not url:
        from tests.support.postgres import TempPostgres

        server = TempPostgres().start()
        url = server.url
    try:
        figures = run(url, scale=args.scale, lookups=args.lookups)
    finally:
        if server is not None:
            server.stop()
    verdicts = figures.verdicts()
    print("\nfigure                     value        target")
    for key, value in asdict(figures).items():
        target = TARGETS.get(key)
        mark = ""
        if key in verdicts:
            mark = "ok" if verdicts[key] else "MISSED"
        elif key in ("navy_segment_count_s", "busy_segment_count_s"):
            target = TARGETS["segment_count_s"]
            mark = "ok" if float(value) < target else "MISSED"
        print(f"{key:<26} {value!s:<12} {'' if target is None else '< ' + str(target):<9} {mark}")
    if args.json:
        print(json.dumps(asdict(figures)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
