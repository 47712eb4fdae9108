"""Ops review at scale: N stored messages (default 1,000,000), made inside the database,
indexed for search, then the review list, each filter and the search timed as the console
runs them (``bot.services.review.list_conversations``: one page of 50 with the total count
and the row summaries, text masked for ops). Target from issue 10: p95 < 300 ms for list,
filter and search. If ``bot.services.analytics.dashboard`` exists, it is timed too
(target < 2 s).

    make bench-ops                                          # 1,000,000 messages, temp PostgreSQL
    .venv-app/bin/python bench/ops.py --messages 100000     # smaller
    .venv-app/bin/python bench/ops.py --sqlite --messages 1000000   # the embedded SQLite
    .venv-app/bin/python bench/ops.py --url postgresql+psycopg://…/empty_db

The data: conversations of ten messages (five shopper turns, five bot replies) spread over
90 days, two thirds Chinese; shopper text from 24 templates per language × 40 product names
(each combination segmented once by ``bot.search.segment`` and the index rows built in SQL
from them, the same words the after-flush hook would write); intents from the templates, 2 %
of turns nlu_fallback, confidences spread over 0.30–1.00; half the conversations belong to a
customer (a tenth of the customers tagged ``vip``, a saved segment of them); 5 % handed off
(three reasons), 3 % with a satisfaction score, 10 % with an outcome, 2 % reviewed.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.cli import migrate  # noqa: E402
from bot.db import make_engine  # noqa: E402
from bot.models.crm import Segment  # noqa: E402
from bot.search import segment  # noqa: E402
from bot.services import review  # noqa: E402

FULL_MESSAGES = 1_000_000
TARGET_MS = 300.0
DASHBOARD_TARGET_S = 2.0
BASE = datetime(2026, 9, 1, tzinfo=timezone.utc)
DAYS = 90
PRODUCTS = [
    "羽绒服", "衬衫", "连衣裙", "牛仔裤", "运动鞋", "领带", "西装", "毛衣", "风衣", "T恤",
    "卫衣", "围巾", "帽子", "皮带", "袜子", "短裤", "外套", "夹克", "裙子", "背包",
    "coat", "shirt", "dress", "jeans", "sneakers", "tie", "suit", "sweater", "trench", "tee",
    "hoodie", "scarf", "hat", "belt", "socks", "shorts", "jacket", "blazer", "skirt", "backpack",
]  # fmt: skip
ZH = [
    ("order_status", "我的{p}订单到哪了"),
    ("order_status", "帮我查一下{p}的物流"),
    ("shipping_delay", "{p}怎么还没发货 都好几天了"),
    ("shipping_info", "{p}包邮吗 几天能到"),
    ("cancel_order", "我不想要{p}了 帮我取消订单"),
    ("modify_order", "{p}的收货地址能改吗"),
    ("return_refund", "我想退货 {p}太大了"),
    ("return_refund", "{p}退款要多久到账"),
    ("exchange", "{p}能换一个尺码吗"),
    ("product_question", "{p}是什么材质的"),
    ("product_question", "{p}有蓝色的吗"),
    ("product_recommendation", "有没有和{p}搭配的推荐"),
    ("coupon_promotion", "买{p}有优惠券吗"),
    ("payment_issue", "{p}付款失败了怎么办"),
    ("invoice", "买{p}能开发票吗"),
    ("membership_points", "买{p}能积分吗"),
    ("complaint", "{p}质量太差了 我要投诉"),
    ("complaint", "快递太慢了 {p}还没到 投诉"),
    ("human_agent", "{p}的问题 转人工"),
    ("greet", "你好 在吗 想问下{p}"),
    ("thank", "好的谢谢 {p}收到了"),
    ("affirm", "可以 {p}就这样吧"),
    ("deny", "不行 {p}不要这个"),
    ("out_of_scope", "今天天气怎么样 {p}"),
]  # fmt: skip
EN = [
    ("order_status", "where is my {p} order"),
    ("order_status", "can you track my {p} parcel"),
    ("shipping_delay", "my {p} has not shipped yet, why so late"),
    ("shipping_info", "is shipping free for the {p}"),
    ("cancel_order", "please cancel my {p} order"),
    ("modify_order", "can I change the address for my {p}"),
    ("return_refund", "I want to return the {p}, it is too big"),
    ("return_refund", "how long does the refund for the {p} take"),
    ("exchange", "can I exchange the {p} for another size"),
    ("product_question", "what material is the {p}"),
    ("product_question", "do you have the {p} in blue"),
    ("product_recommendation", "what goes well with the {p}"),
    ("coupon_promotion", "any coupon for the {p}"),
    ("payment_issue", "payment for the {p} failed"),
    ("invoice", "I need an invoice for the {p}"),
    ("membership_points", "do I get points for the {p}"),
    ("complaint", "the {p} quality is terrible, I want to complain"),
    ("complaint", "delivery is too slow, my {p} is still not here"),
    ("human_agent", "let me talk to a person about the {p}"),
    ("greet", "hello, a question about the {p}"),
    ("thank", "thanks, the {p} arrived"),
    ("affirm", "yes the {p} is fine"),
    ("deny", "no, not that {p}"),
    ("out_of_scope", "what is the weather like {p}"),
]  # fmt: skip
HANDOFF_REASONS = ("human_requested", "low_confidence", "vip_problem")
OUTCOMES = ("delay_accepted", "return", "coupon_issued", "complaint_recorded", "cancelled")


@dataclass
class Figures:
    messages: int
    conversations: int
    backend: str
    generate_s: float
    index_s: float
    cases: dict[str, dict[str, float]] = field(default_factory=dict)
    search_hits: dict[str, int] = field(default_factory=dict)
    dashboard_s: float | None = None
    dashboard_note: str = ""

    def verdicts(self) -> dict[str, bool]:
        out = {name: c["p95_ms"] < TARGET_MS for name, c in self.cases.items()}
        if self.dashboard_s is not None:
            out["analytics dashboard"] = self.dashboard_s < DASHBOARD_TARGET_S
        return out


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


# --- generation ------------------------------------------------------------------------------


def _templates() -> list[dict[str, Any]]:
    """Every (template, product) text with its intent, language and search words."""
    rows: list[dict[str, Any]] = []
    for language, templates in (("zh", ZH), ("en", EN)):
        for t, (intent, pattern) in enumerate(templates):
            for p, product in enumerate(PRODUCTS):
                body = pattern.format(p=product)
                rows.append(
                    {
                        "id": len(rows) + 1,
                        "language": language,
                        "slot": t * len(PRODUCTS) + p,
                        "intent": intent,
                        "text": body,
                        "words": segment(body),
                    }
                )
    return rows


class _Sql:
    """The few expressions that differ between PostgreSQL and SQLite, written into the
    generator's statements where they say ``<series :n>``, ``<at seconds>`` or
    ``<terms words>`` (fixed code, never input; every value is a bound parameter)."""

    MARK = re.compile(r"<(series|at|terms) ([^<>]+)>")

    def __init__(self, dialect: str) -> None:
        self.pg = dialect == "postgresql"

    def render(self, statement: str) -> str:
        return self.MARK.sub(lambda m: getattr(self, m.group(1))(m.group(2)), statement)

    def series(self, n: str) -> str:
        if self.pg:
            return f"WITH s(i) AS (SELECT generate_series(1, {n}))"
        return f"WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n})"  # noqa: S608

    def at(self, seconds: str) -> str:
        if self.pg:
            return f"(CAST(:base AS timestamptz) + make_interval(secs => {seconds}))"
        return (
            f"(strftime('%Y-%m-%d %H:%M:%S', :base, '+' || ({seconds}) || ' seconds') || '.000000')"
        )

    def terms(self, words: str) -> str:
        return f"array_to_tsvector(string_to_array({words}, ' '))" if self.pg else words

    def base(self) -> str:
        return BASE.isoformat() if self.pg else BASE.strftime("%Y-%m-%d %H:%M:%S")


def generate(engine: sa.Engine, *, messages: int) -> tuple[int, float, float]:
    """Fill an empty migrated database; returns (conversations, generate s, index s)."""
    conversations = max(1, messages // 10)
    customers = max(10, conversations // 4)
    spread = DAYS * 86400 // conversations or 1
    q = _Sql(engine.dialect.name)
    templates = _templates()
    per_language = len(ZH) * len(PRODUCTS)
    start = time.perf_counter()
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TEMP TABLE bench_template (id integer PRIMARY KEY, language varchar(8), "
            "slot integer, intent varchar(64), text text, words text)"
        )
        conn.execute(
            sa.text(
                "INSERT INTO bench_template VALUES (:id, :language, :slot, :intent, :text, :words)"
            ),
            templates,
        )
        conn.exec_driver_sql("CREATE INDEX bench_template_slot ON bench_template (language, slot)")
        params = {
            "n": messages, "c": conversations, "k": customers, "base": q.base(),
            "spread": spread, "zh_slots": per_language, "en_slots": len(EN) * len(PRODUCTS),
        }  # fmt: skip
        statements = [
            """INSERT INTO customer (id, external_id, name, language, membership_level, points,
                created_at)
            <series :k>
            SELECT i, 'R' || i, 'customer ' || i, 'zh', 'regular', 0, <at 0> FROM s""",
            """INSERT INTO customer_tag (customer_id, tag, source, created_at)
            <series :k> SELECT i, 'vip', 'import', <at 0> FROM s WHERE i % 10 = 1""",
            """INSERT INTO visitor (id, customer_id, created_at)
            <series :c> SELECT 'v' || i, NULL, <at i * :spread> FROM s""",
            """INSERT INTO conversation (id, visitor_id, customer_id, state, language,
                needs_human, flag_reason, created_at, last_message_at)
            <series :c>
            SELECT 'c' || i, 'v' || i,
                   CASE WHEN i % 2 = 0 THEN 1 + (i * 17) % :k END,
                   'closed', CASE WHEN i % 3 = 0 THEN 'en' ELSE 'zh' END, false, NULL,
                   <at i * :spread>, <at i * :spread + 90>
            FROM s""",
            # Message i belongs to conversation (i - 1) / 10 + 1; even offsets are shopper
            # turns, odd ones the bot's replies.
            """INSERT INTO message (id, uid, conversation_id, role, text, status, intent,
                confidence, language, created_at)
            <series :n>,
            m AS (
              SELECT i, (i - 1) / 10 + 1 AS conv, (i - 1) % 10 AS k,
                     CASE WHEN ((i - 1) / 10 + 1) % 3 = 0 THEN 'en' ELSE 'zh' END AS lang
              FROM s)
            SELECT m.i, 'm' || m.i, 'c' || m.conv,
                   CASE WHEN m.k % 2 = 0 THEN 'shopper' ELSE 'bot' END,
                   CASE WHEN m.k % 2 = 0 THEN t.text ELSE 'ok 好的' END,
                   'done',
                   CASE WHEN m.k % 2 = 1 THEN NULL
                        WHEN (m.i * 13) % 47 = 0 THEN 'nlu_fallback' ELSE t.intent END,
                   CASE WHEN m.k % 2 = 0 THEN 0.3 + (((m.i % 100000) * 7919) % 700) / 1000.0 END,
                   m.lang, <at m.conv * :spread + m.k * 9>
            FROM m JOIN bench_template t ON t.language = m.lang AND t.slot =
                 (m.i * 31) % (CASE WHEN m.lang = 'zh' THEN :zh_slots ELSE :en_slots END)""",
            """INSERT INTO handoff (conversation_id, reason, state, vip, requested_at, sort_at,
                ended_at, outcome)
            <series :c>
            SELECT 'c' || i,
                   CASE i % 3 WHEN 0 THEN 'human_requested' WHEN 1 THEN 'low_confidence'
                        ELSE 'vip_problem' END,
                   'ended', false, <at i * :spread + 30>, <at i * :spread + 30>,
                   <at i * :spread + 600>, 'closed'
            FROM s WHERE i % 20 = 0""",
            """INSERT INTO csat (conversation_id, score, state, asked_at)
            <series :c>
            SELECT 'c' || i, 1 + (i / 30) % 5, 'scored', <at i * :spread + 700>
            FROM s WHERE i % 30 = 0""",
            """INSERT INTO outcome (kind, message_id, conversation_id, detail, created_at)
            <series :c>
            SELECT CASE (i / 10) % 5 WHEN 0 THEN 'delay_accepted' WHEN 1 THEN 'return'
                        WHEN 2 THEN 'coupon_issued' WHEN 3 THEN 'complaint_recorded'
                        ELSE 'cancelled' END,
                   'm' || ((i - 1) * 10 + 1), 'c' || i, '{}', <at i * :spread + 40>
            FROM s WHERE i % 10 = 0""",
            """INSERT INTO conversation_review (conversation_id, status, updated_at)
            <series :c>
            SELECT 'c' || i, CASE WHEN i % 100 = 0 THEN 'needs_attention' ELSE 'reviewed' END,
                   <at i * :spread + 800>
            FROM s WHERE i % 50 = 0""",
        ]
        for statement in statements:
            conn.execute(sa.text(q.render(statement)), params)
    generate_s = time.perf_counter() - start
    start = time.perf_counter()
    with engine.begin() as conn:
        # The index rows the after-flush hook would write, from the segmented templates.
        conn.execute(
            sa.text(
                q.render("""
            INSERT INTO message_search (message_id, conversation_id, created_at, terms)
            SELECT m.id, m.conversation_id, m.created_at, <terms t.words>
            FROM message m JOIN bench_template t ON t.language = m.language AND t.slot =
                 (m.id * 31) % (CASE WHEN m.language = 'zh' THEN :zh_slots ELSE :en_slots END)
            WHERE m.role = 'shopper'""")
            ),
            {"zh_slots": per_language, "en_slots": len(EN) * len(PRODUCTS)},
        )
        conn.exec_driver_sql("DROP TABLE bench_template")
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql("VACUUM ANALYZE" if q.pg else "ANALYZE")
    index_s = time.perf_counter() - start
    with Session(engine) as session:
        session.add(Segment(name="bench vip", rule={"tag": "vip"}, created_at=BASE))
        session.commit()
    return conversations, generate_s, index_s


# --- measuring -------------------------------------------------------------------------------


def _cases(segment_id: int) -> dict[str, list[dict[str, str]]]:
    week = [
        {"date_from": (BASE.date() + timedelta(days=d)).isoformat(),
         "date_to": (BASE.date() + timedelta(days=d + 6)).isoformat()}
        for d in range(0, 80, 9)
    ]  # fmt: skip
    return {
        "list (first page, no filter)": [{}],
        "filter: date range (a week)": week,
        "filter: language": [{"language": "en"}, {"language": "zh"}],
        "filter: intent": [{"intent": i} for i, _ in ZH[::3]],
        "filter: confidence below": [{"confidence_below": c} for c in ("0.35", "0.5", "0.75")],
        "filter: fallback happened": [{"fallback": "yes"}],
        "filter: handed off (any / reason)": [{"handoff": "any"}]
        + [{"handoff": r} for r in HANDOFF_REASONS],
        "filter: outcome": [{"outcome": k} for k in OUTCOMES],
        "filter: satisfaction": [{"csat": s} for s in ("low", "5", "none")],
        "filter: customer segment": [{"segment_id": str(segment_id)}],
        "filter: customer tag": [{"tag": "vip"}],
        "filter: review status": [{"review_status": s} for s in ("needs_attention", "reviewed")],
        "filter: combined (en, low confidence, week)": [
            {**w, "language": "en", "confidence_below": "0.5"} for w in week
        ],
        "search zh": [{"query": q} for q in ("退货", "羽绒服 退货", "投诉", "物流", "发票")],
        "search en": [{"query": q} for q in ("refund", "coat refund", "complain", "invoice")],
        "search + filter": [
            {"query": "退货", "language": "zh", "confidence_below": "0.6"},
            {"query": "退货", "handoff": "any"},
            {"query": "refund", "language": "en", "date_from": "2026-10-01"},
        ],
    }


def _time_case(
    session: Session, variants: list[dict[str, str]], samples: int
) -> tuple[list[float], int]:
    timings: list[float] = []
    total = 0
    for n in range(samples):
        filters = review.parse_filters(variants[n % len(variants)])
        start = time.perf_counter()
        page = review.list_conversations(session=session, filters=filters, role="ops")
        timings.append((time.perf_counter() - start) * 1000)
        # A count that stopped at the cap is recorded as cap + 1 ("more than").
        total = max(total, page.total + (1 if page.total_capped else 0))
    return timings, total


def _deep_page(session: Session, samples: int) -> list[float]:
    """The 21st page of the unfiltered list by its keyset cursor."""
    filters = review.ReviewFilters()
    cursor = None
    for _ in range(20):
        page = review.list_conversations(
            session=session, filters=filters, role="ops", cursor=cursor, with_total=False
        )
        cursor = page.next_cursor
    timings = []
    for _ in range(samples):
        start = time.perf_counter()
        review.list_conversations(session=session, filters=filters, role="ops", cursor=cursor)
        timings.append((time.perf_counter() - start) * 1000)
    return timings


def _dashboard(session: Session) -> tuple[float | None, str]:
    try:
        from bot.services import analytics
    except ImportError:
        return None, "bot.services.analytics is not there: not timed"
    board: Callable[..., Any] | None = getattr(analytics, "dashboard", None)
    if board is None:
        return None, "bot.services.analytics has no dashboard(): not timed"
    start_day = BASE.date() + timedelta(days=30)
    end_day = start_day + timedelta(days=29)
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        board(session, start=start_day, end=end_day, tz="Asia/Shanghai")
        runs.append(time.perf_counter() - start)
    return max(runs), "analytics.dashboard, 30 days, worst of 3 runs"


def run(
    url: str,
    *,
    messages: int,
    samples: int = 40,
    out: Callable[[str], None] = print,
    reuse: bool = False,
) -> Figures:
    migrate(url)
    engine = make_engine(url)
    backend = engine.dialect.name
    if reuse:  # a database this bench filled before (--reuse): time again without generating
        conversations, generate_s, index_s = messages // 10, 0.0, 0.0
    else:
        out(f"generating {messages:,} messages on {backend} …")
        conversations, generate_s, index_s = generate(engine, messages=messages)
    out(f"generated {conversations:,} conversations in {generate_s:.1f} s; "
        f"search index and ANALYZE in {index_s:.1f} s")  # fmt: skip
    figures = Figures(messages, conversations, backend, round(generate_s, 2), round(index_s, 2))
    with Session(engine) as session:
        segment_id = int(session.scalar(sa.select(Segment.id).where(Segment.name == "bench vip")))
        review.list_conversations(session=session, filters=review.ReviewFilters(), role="ops")
        for name, variants in _cases(segment_id).items():
            timings, total = _time_case(session, variants, samples)
            figures.cases[name] = {
                "p50_ms": round(statistics.median(timings), 2),
                "p95_ms": round(_percentile(timings, 0.95), 2),
                "matches": total,
            }
            if name.startswith("search"):
                figures.search_hits[name] = total
        deep = _deep_page(session, samples)
        figures.cases["list: page 21 (keyset)"] = {
            "p50_ms": round(statistics.median(deep), 2),
            "p95_ms": round(_percentile(deep, 0.95), 2),
            "matches": conversations,
        }
        figures.dashboard_s, figures.dashboard_note = _dashboard(session)
    engine.dispose()
    verdicts = figures.verdicts()
    out(
        f"{'case':<46} {'p50 ms':>9} {'p95 ms':>9} {'most found':>10}  target p95 < {TARGET_MS:.0f} ms"
    )
    for name, c in figures.cases.items():
        mark = "ok" if verdicts[name] else "MISSED"
        capped = c["matches"] == review.COUNT_CAP + 1  # the count stopped at the cap
        found = f"{review.COUNT_CAP:,}+" if capped else f"{c['matches']:,}"
        out(f"{name:<46} {c['p50_ms']:>9.1f} {c['p95_ms']:>9.1f} {found:>10}  {mark}")
    if figures.dashboard_s is not None:
        mark = "ok" if verdicts["analytics dashboard"] else "MISSED"
        out(f"{figures.dashboard_note}: {figures.dashboard_s:.2f} s (target < "
            f"{DASHBOARD_TARGET_S:.0f} s) {mark}")  # fmt: skip
    else:
        out(figures.dashboard_note)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=FULL_MESSAGES)
    parser.add_argument("--samples", type=int, default=40, help="timed runs per case")
    parser.add_argument("--url", help="an empty database to fill (default: a temp PostgreSQL)")
    parser.add_argument("--sqlite", action="store_true", help="a temporary SQLite file instead")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument(
        "--reuse", action="store_true", help="--url was filled by this bench before: only time"
    )
    args = parser.parse_args(argv)
    server = None
    workdir = None
    if args.url:
        url = args.url
    elif args.sqlite:
        workdir = tempfile.TemporaryDirectory(prefix="kefu-bench-ops-")
        url = f"sqlite:///{workdir.name}/bench.db"
    else:
        from tests.support.postgres import TempPostgres

        server = TempPostgres().start()
        url = server.url
    try:
        figures = run(url, messages=args.messages, samples=args.samples, reuse=args.reuse)
    finally:
        if server is not None:
            server.stop()
        if workdir is not None:
            workdir.cleanup()
    if args.json:
        print(json.dumps(asdict(figures), ensure_ascii=False, indent=2))
    return 0 if all(figures.verdicts().values()) else 1


if __name__ == "__main__":
    sys.exit(main())
