"""A month of synthetic conversation history for the demo store's analytics dashboard.

Demo data, clearly marked: every visitor id starts with ``DEMO_VISITOR_PREFIX``, the bot's
replies say "演示数据 / demo data", the shoppers are anonymous (no customer, so no profile,
segment or tag is touched) and every conversation is closed (none shows in a live queue).
Deterministic for a given clock and day count. ``python -m bot.cli demo-history --days 30``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from bot.models import Staff
from bot.models.conversation import Conversation, Message, Visitor
from bot.models.handoff import AgentMessage, Csat, Handoff

DEMO_VISITOR_PREFIX = "demo-"
MAX_DAYS = 120
# Shoppers write more in the late morning and the evening (local hours 0-23).
HOUR_WEIGHTS = (
    0.3, 0.2, 0.1, 0.1, 0.1, 0.2, 0.4, 0.8, 1.5, 2.2, 2.8, 3.0,
    2.6, 2.4, 2.5, 2.6, 2.4, 2.2, 2.3, 2.8, 3.4, 3.6, 2.8, 1.4,
)  # fmt: skip
INTENTS: dict[str, tuple[int, str, str]] = {
    # intent: (weight, a shopper's line in Chinese, in English)
    "order_status": (22, "我的订单到哪了", "where is my order"),
    "shipping_delay": (10, "怎么还没发货", "why hasn't it shipped yet"),
    "shipping_info": (7, "运费多少", "how much is shipping"),
    "return_refund": (9, "我想退货", "I want to return this"),
    "exchange": (4, "能换个尺码吗", "can I exchange the size"),
    "product_question": (12, "这件衬衫是什么面料", "what is this shirt made of"),
    "product_recommendation": (4, "有什么推荐的", "what would you recommend"),
    "coupon_promotion": (6, "有优惠券吗", "any coupons"),
    "payment_issue": (3, "付款失败了", "my payment failed"),
    "invoice": (3, "要开发票", "I need an invoice"),
    "membership_points": (3, "我有多少积分", "how many points do I have"),
    "cancel_order": (4, "取消订单", "cancel my order"),
    "modify_order": (3, "改一下地址", "change my address"),
    "complaint": (4, "太慢了，很不满意", "this is too slow, not happy"),
    "human_agent": (4, "转人工", "let me talk to a person"),
    "greet": (8, "你好", "hello"),
    "thank": (6, "谢谢", "thanks"),
    "out_of_scope": (3, "今天天气怎么样", "what's the weather like"),
    "nlu_fallback": (6, "嗯那个就是", "hmm the thing"),
}
CSAT_WEIGHTS = (4, 5, 10, 30, 51)  # scores 1..5, per cent


@dataclass(frozen=True)
class DemoHistory:
    conversations: int
    messages: int
    handoffs: int
    csat: int


def _uid(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def has_demo_history(*, session: Session) -> bool:
    return bool(
        session.scalar(
            select(func.count())
            .select_from(Visitor)
            .where(Visitor.id.like(f"{DEMO_VISITOR_PREFIX}%"))
        )
    )


def write_demo_history(
    *,
    session: Session,
    days: int = 30,
    tz: str = "Asia/Shanghai",
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    per_day: int = 50,
) -> DemoHistory:
    """Write ``days`` local days of demo conversations (today so far included): about
    ``per_day`` a day (more at weekends), turns with intents and confidences, handoffs with
    queue waits and agents' replies (by the active agents and supervisors, if any exist),
    hand-backs and satisfaction answers. Does nothing if demo history is already there."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be 1 to {MAX_DAYS}")
    if has_demo_history(session=session):
        return DemoHistory(0, 0, 0, 0)
    zone = ZoneInfo(tz)
    now = clock().astimezone(timezone.utc)
    today = now.astimezone(zone).date()
    rng = random.Random(f"kefu-demo-history-{today.isoformat()}-{days}")
    agents = list(
        session.scalars(
            select(Staff.id)
            .where(Staff.active.is_(True), Staff.role.in_(("agent", "supervisor")))
            .order_by(Staff.id)
        )
    )
    writer = _Writer(session, rng, agents)
    for back in range(days - 1, -1, -1):
        day = today - timedelta(days=back)
        growth = 1 + 0.01 * (days - back)
        weekend = 1.25 if day.weekday() >= 5 else 1.0
        count = max(5, round(per_day * growth * weekend * rng.uniform(0.8, 1.2)))
        for _ in range(count):
            start = _local_moment(rng, day, zone)
            if start < now - timedelta(hours=1):  # a conversation lasts under an hour
                writer.conversation(start)
    return writer.flush()


def _local_moment(rng: random.Random, day: date, zone: ZoneInfo) -> datetime:
    hour = rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
    local = datetime.combine(day, time(hour, rng.randrange(60), rng.randrange(60)), tzinfo=zone)
    return local.astimezone(timezone.utc)


def _insert(session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    # A Core executemany with the same keys in every row: the ORM's bulk insert splits its
    # batch wherever a value is None, which made one round trip per message on PostgreSQL.
    session.execute(insert(model.__table__), rows)


class _Writer:
    def __init__(self, session: Session, rng: random.Random, agents: list[int]) -> None:
        self.session, self.rng, self.agents = session, rng, agents
        self.visitors: list[dict[str, Any]] = []
        self.conversations: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []
        self.agent_lines: list[tuple[str, int]] = []  # (message uid, staff id)
        self.handoffs: list[tuple[Handoff, dict[str, Any] | None]] = []

    def _message(self, cid: str, at: datetime, role: str, text: str, **nlu: Any) -> str:
        uid = _uid(self.rng)
        self.messages.append(
            {
                "uid": uid,
                "conversation_id": cid,
                "role": role,
                "text": text,
                "status": "done",
                "created_at": at,
                "intent": nlu.get("intent"),
                "confidence": nlu.get("confidence"),
                "language": nlu.get("language"),
            }
        )
        return uid

    def conversation(self, start: datetime) -> None:
        rng = self.rng
        language = "zh" if rng.random() < 0.75 else "en"
        visitor = f"{DEMO_VISITOR_PREFIX}{rng.getrandbits(108):027x}"
        cid = _uid(rng)
        self.visitors.append({"id": visitor, "created_at": start, "last_seen_at": start})
        names = list(INTENTS)
        weights = [INTENTS[n][0] for n in names]
        at = start
        intents: list[str] = []
        for _ in range(rng.choices((1, 2, 3, 4, 5), weights=(25, 30, 25, 12, 8))[0]):
            intent = rng.choices(names, weights=weights)[0]
            if intent == "nlu_fallback":
                confidence = rng.uniform(0.35, 0.749)
            else:
                confidence = 0.75 + 0.249 * rng.betavariate(5, 1.5)
            _, zh, en = INTENTS[intent]
            self._message(
                cid, at, "shopper", zh if language == "zh" else en,
                intent=intent, confidence=round(confidence, 4), language=language,
            )  # fmt: skip
            reply = (
                "（演示数据）好的，我来帮您查一下。"
                if language == "zh"
                else "(demo data) Sure, let me check."
            )
            self._message(cid, at + timedelta(seconds=rng.uniform(0.4, 2.5)), "bot", reply)
            intents.append(intent)
            at += timedelta(seconds=rng.uniform(15, 120))
        last = self._handoff(cid, at, intents, language)
        self.conversations.append(
            {
                "id": cid,
                "visitor_id": visitor,
                "state": "closed",
                "language": language,
                "needs_human": False,
                "created_at": start,
                "last_message_at": last,
            }
        )

    def _reason(self, intents: list[str]) -> str | None:
        rng = self.rng
        if "human_agent" in intents and rng.random() < 0.8:
            return "requested"
        if "complaint" in intents and rng.random() < 0.5:
            return "angry_complaint" if rng.random() < 0.3 else "complaint"
        if intents.count("nlu_fallback") >= 2:
            return "fallback"
        if rng.random() < 0.03:
            return "takeover"
        return None

    def _handoff(self, cid: str, at: datetime, intents: list[str], language: str) -> datetime:
        reason = self._reason(intents)
        if reason is None:
            return at
        rng = self.rng
        requested = at
        if reason != "takeover" and rng.random() < 0.1:  # gave up waiting
            ended = requested + timedelta(seconds=rng.uniform(30, 300))
            handoff = Handoff(
                conversation_id=cid, reason=reason, state="ended", requested_at=requested,
                sort_at=requested, ended_at=ended, outcome="cancelled",
            )  # fmt: skip
            self.handoffs.append((handoff, None))
            return ended
        agent = rng.choice(self.agents) if self.agents else None
        wait = 0.0 if reason == "takeover" else min(900.0, rng.expovariate(1 / 45))
        assigned = requested + timedelta(seconds=wait)
        said = assigned + timedelta(seconds=3 + min(300.0, rng.expovariate(1 / 18)))
        for _ in range(rng.randint(2, 5)):
            text = (
                "（演示数据）您好，我是客服。"
                if language == "zh"
                else "(demo data) Hi, an agent here."
            )
            uid = self._message(cid, said, "agent", text)
            if agent is not None:
                self.agent_lines.append((uid, agent))
            said += timedelta(seconds=rng.uniform(20, 120))
        ended = said + timedelta(seconds=rng.uniform(30, 300))
        outcome = "handed_back" if rng.random() < 0.7 else "closed"
        handoff = Handoff(
            conversation_id=cid, reason=reason, state="ended", requested_at=requested,
            sort_at=requested, agent_id=agent, assigned_at=assigned, ended_at=ended,
            outcome=outcome, disposition="resolved" if outcome == "closed" else None,
        )  # fmt: skip
        csat = None
        if rng.random() < 0.85:
            scored = rng.random() < 0.65
            csat = {
                "conversation_id": cid,
                "agent_id": agent,
                "score": rng.choices((1, 2, 3, 4, 5), weights=CSAT_WEIGHTS)[0] if scored else None,
                "state": "done" if scored else "asked",
                "asked_at": ended,
                "answered_at": ended + timedelta(seconds=rng.uniform(5, 60)) if scored else None,
            }
        self.handoffs.append((handoff, csat))
        return ended

    def flush(self) -> DemoHistory:
        session = self.session
        if self.visitors:
            _insert(session, Visitor, self.visitors)
            _insert(session, Conversation, self.conversations)
            _insert(session, Message, self.messages)
        if self.agent_lines:
            wanted = dict(self.agent_lines)
            ids: dict[str, int] = {}
            uids = list(wanted)
            for n in range(0, len(uids), 500):
                chunk = uids[n : n + 500]
                found = select(Message.uid, Message.id).where(Message.uid.in_(chunk))
                ids.update((uid, mid) for uid, mid in session.execute(found))
            _insert(
                session,
                AgentMessage,
                [{"message_id": ids[uid], "staff_id": staff} for uid, staff in wanted.items()],
            )
        session.add_all([handoff for handoff, _ in self.handoffs])
        session.flush()
        answers = [{**csat, "handoff_id": h.id} for h, csat in self.handoffs if csat is not None]
        if answers:
            _insert(session, Csat, answers)
        return DemoHistory(
            conversations=len(self.conversations),
            messages=len(self.messages),
            handoffs=len(self.handoffs),
            csat=len(answers),
        )
