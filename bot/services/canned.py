"""Canned responses (话术库): the store's scripts, searched by shortcode and text, rendered
with placeholders filled from the conversation.

A body names placeholders in braces — ``{name}``, ``{order_no}``, ``{delay_reason}``,
``{agent_name}`` (``PLACEHOLDERS``). Saving a body that names any other placeholder is
refused; rendering never fails: a value the conversation does not have (or a name nobody
knows, in a row written before a rule changed) becomes a visible marker such as
``【待填写：订单号】`` / ``[fill in: order number]`` that the agent must replace before sending.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.clock import Clock, utcnow
from bot.errors import InvalidInput, NotFound
from bot.models.console import CANNED_LANGUAGES, CannedResponse

# name -> (zh, en) label, for markers and for the picker's "fills:" line.
PLACEHOLDERS: dict[str, tuple[str, str]] = {
    "name": ("顾客称呼", "customer name"),
    "order_no": ("订单号", "order number"),
    "delay_reason": ("延误原因", "delay reason"),
    "agent_name": ("客服姓名", "agent name"),
}
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
SHORTCODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
MAX_TITLE = 100
MAX_BODY = 2000
SEARCH_LIMIT = 20


class DuplicateShortcode(InvalidInput):
    code = "duplicate_shortcode"


@dataclass(frozen=True)
class CannedView:
    id: int
    shortcode: str
    language: str
    title: str
    body: str
    placeholders: tuple[str, ...]
    updated_by: int | None
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "shortcode": self.shortcode,
            "language": self.language,
            "title": self.title,
            "body": self.body,
            "placeholders": list(self.placeholders),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True)
class Rendered:
    text: str
    missing: tuple[str, ...]  # placeholders left as markers


def _view(row: CannedResponse) -> CannedView:
    return CannedView(
        row.id,
        row.shortcode,
        row.language,
        row.title,
        row.body,
        tuple(row.placeholders or ()),
        row.updated_by,
        row.updated_at,
    )


def placeholders_in(body: str) -> list[str]:
    """The placeholder names a body uses, in order of first use."""
    seen: list[str] = []
    for name in PLACEHOLDER.findall(body):
        if name not in seen:
            seen.append(name)
    return seen


def marker(name: str, language: str) -> str:
    """What an unfilled placeholder renders as: visible, and impossible to mistake for data."""
    zh, en = PLACEHOLDERS.get(name, (name, name))
    return f"【待填写：{zh}】" if language == "zh" else f"[fill in: {en}]"


def render(body: str, values: Mapping[str, str | None], language: str) -> Rendered:
    """Fill ``{placeholders}`` from ``values``; a missing or empty value becomes a marker.
    Braces that are not a placeholder (``{``, ``{1}``) are left as written."""
    missing: list[str] = []

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        value = values.get(name)
        if value is None or not str(value).strip():
            if name not in missing:
                missing.append(name)
            return marker(name, language)
        return str(value)

    return Rendered(PLACEHOLDER.sub(fill, body), tuple(missing))


def _checked(shortcode: str, language: str, title: str, body: str) -> tuple[str, str, str, str]:
    shortcode = shortcode.strip().lower().lstrip("/")
    if not SHORTCODE.match(shortcode):
        raise InvalidInput(
            "a shortcode is 1 to 32 lower-case letters, digits, '-' or '_', starting with a "
            "letter or digit"
        )
    if language not in CANNED_LANGUAGES:
        raise InvalidInput(f"language must be one of {', '.join(CANNED_LANGUAGES)}")
    title, body = title.strip(), body.strip()
    if not title or len(title) > MAX_TITLE:
        raise InvalidInput(f"a title has 1 to {MAX_TITLE} characters")
    if not body or len(body) > MAX_BODY:
        raise InvalidInput(f"a body has 1 to {MAX_BODY} characters")
    unknown = [p for p in placeholders_in(body) if p not in PLACEHOLDERS]
    if unknown:
        known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
        raise InvalidInput(
            f"unknown placeholder {', '.join('{' + u + '}' for u in unknown)}; use {known}"
        )
    return shortcode, language, title, body


def list_responses(*, session: Session, language: str | None = None) -> list[CannedView]:
    """The whole library (or one language), by shortcode."""
    query = select(CannedResponse).order_by(CannedResponse.shortcode, CannedResponse.language)
    if language is not None:
        query = query.where(CannedResponse.language == language)
    return [_view(r) for r in session.scalars(query)]


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(
    *, session: Session, query: str, language: str | None = None, limit: int = SEARCH_LIMIT
) -> list[CannedView]:
    """Responses whose shortcode, title or body contain ``query`` (case-insensitive; a
    leading ``/`` is the picker's and ignored). Shortcode matches come first, then the
    ones in ``language``; an empty query lists the library."""
    text = query.strip().lstrip("/").lower()[:100]
    stmt = select(CannedResponse)
    if text:
        pattern = _like(text)
        stmt = stmt.where(
            or_(
                func.lower(CannedResponse.shortcode).like(pattern, escape="\\"),
                func.lower(CannedResponse.title).like(pattern, escape="\\"),
                func.lower(CannedResponse.body).like(pattern, escape="\\"),
            )
        )
    rows = list(session.scalars(stmt.order_by(CannedResponse.shortcode, CannedResponse.id)))

    def rank(row: CannedResponse) -> tuple[int, int, int, str]:
        code = row.shortcode.lower()
        return (
            0 if text and code.startswith(text) else 1 if text and text in code else 2,
            0 if language is None or row.language == language else 1,
            len(code),
            code,
        )

    return [_view(r) for r in sorted(rows, key=rank)[: max(1, limit)]]


def get(*, session: Session, canned_id: int) -> CannedView:
    row = session.get(CannedResponse, canned_id)
    if row is None:
        raise NotFound("canned response")
    return _view(row)


def save(
    *,
    session: Session,
    shortcode: str,
    language: str,
    title: str,
    body: str,
    staff_id: int | None,
    canned_id: int | None = None,
    clock: Clock = utcnow,
) -> CannedView:
    """Create a response, or replace the one with ``canned_id``. A shortcode is unique per
    language."""
    shortcode, language, title, body = _checked(shortcode, language, title, body)
    if canned_id is None:
        row = CannedResponse()
    else:
        found = session.get(CannedResponse, canned_id)
        if found is None:
            raise NotFound("canned response")
        row = found
    clash = session.scalar(
        select(CannedResponse.id).where(
            CannedResponse.shortcode == shortcode,
            CannedResponse.language == language,
            CannedResponse.id != (canned_id or 0),
        )
    )
    if clash is not None:
        raise DuplicateShortcode(f"/{shortcode} already exists in {language}")
    row.shortcode, row.language, row.title, row.body = shortcode, language, title, body
    row.placeholders = placeholders_in(body)
    row.updated_by, row.updated_at = staff_id, clock()
    session.add(row)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:  # a concurrent save of the same shortcode
        raise DuplicateShortcode(f"/{shortcode} already exists in {language}") from exc
    return _view(row)


def remove(*, session: Session, canned_id: int) -> None:
    deleted = session.execute(delete(CannedResponse).where(CannedResponse.id == canned_id))
    if not getattr(deleted, "rowcount", 0):
        raise NotFound("canned response")


# The store's scripts. The shipping-delay script follows the store's rule: apologise first,
# give the real reason, then ask whether the delay is acceptable (and offer the way out).
STORE_SCRIPTS: tuple[tuple[str, str, str, str], ...] = (
    # (shortcode, language, title, body)
    ("hi", "zh", "问候", "您好{name}，我是客服{agent_name}，很高兴为您服务，请问有什么可以帮您？"),
    (
        "hi",
        "en",
        "Greeting",
        "Hello {name}, this is {agent_name} from customer service. How can I help you today?",
    ),
    (
        "delay",
        "zh",
        "物流延误致歉",
        "{name}您好，非常抱歉，您的订单 {order_no} 没能按时送达，给您添麻烦了。延误的原因是"
        "{delay_reason}，我们正在全力跟进，包裹一有新进展会第一时间通知您。请问这个延误您可以"
        "接受吗？如果不能接受，我可以为您申请取消订单或补偿一张优惠券。",
    ),
    (
        "delay",
        "en",
        "Shipping delay apology",
        "Hi {name}, I'm very sorry that your order {order_no} hasn't arrived on time. The delay "
        "is due to {delay_reason}; we're following it closely and will tell you as soon as the "
        "parcel moves. Is this delay acceptable to you? If not, I can cancel the order for you "
        "or add a coupon to make up for it.",
    ),
    (
        "where",
        "zh",
        "查询物流",
        "{name}您好，我查一下订单 {order_no} 的物流信息，请稍等一分钟～",
    ),
    (
        "where",
        "en",
        "Checking the parcel",
        "Hi {name}, let me check where order {order_no} is. One moment, please.",
    ),
    (
        "return",
        "zh",
        "退换货说明",
        "签收后7天内可无理由退货（内衣除外），质量问题15天内可退换。我可以直接为订单 {order_no} "
        "提交退货申请，退款会在收到退货后3个工作日内原路返回。",
    ),
    (
        "return",
        "en",
        "Returns",
        "You can return an item within 7 days of delivery without giving a reason (except "
        "underwear), or within 15 days for a quality problem. I can open the return for order "
        "{order_no} now; the refund goes back to your payment method within 3 business days of "
        "the return arriving.",
    ),
    (
        "wait",
        "zh",
        "请稍候",
        "好的，我马上为您核实，请稍等片刻，谢谢您的耐心！",
    ),
    ("wait", "en", "One moment", "Sure, I'm checking this for you now. Thanks for your patience!"),
    (
        "bye",
        "zh",
        "结束语",
        "感谢您的耐心，{name}！还有其他问题随时找我们，祝您购物愉快～",
    ),
    (
        "bye",
        "en",
        "Closing",
        "Thanks for your patience, {name}! Write to us any time if there's anything else.",
    ),
)


def seed_store_scripts(*, session: Session, clock: Clock = utcnow) -> int:
    """Add the store's scripts that are not in the library yet (by shortcode and language;
    an edited script is never overwritten). Returns how many were added."""
    existing = set(session.execute(select(CannedResponse.shortcode, CannedResponse.language)))
    added = 0
    for shortcode, language, title, body in STORE_SCRIPTS:
        if (shortcode, language) in existing:
            continue
        save(
            session=session,
            shortcode=shortcode,
            language=language,
            title=title,
            body=body,
            staff_id=None,
            clock=clock,
        )
        added += 1
    return added


def main() -> None:
    """``python -m bot.services.canned``: add the store's scripts to an existing database
    (the demo seed does this for a new one)."""
    from bot.db import session_scope

    with session_scope() as session:
        print(f"added {seed_store_scripts(session=session)} canned responses")


if __name__ == "__main__":
    main()
