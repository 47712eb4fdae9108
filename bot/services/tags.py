"""Rule-derived customer tags: the rules are data (``bot/tag_rules.yml``), evaluated in SQL.

Each rule is a tag and a condition in the segment rule language (``bot.services.segments``);
``apply_tag_rules`` makes the tags of source ``bot_rule`` exactly what the rules select —
adding the new ones, removing the stale ones and those of rules that no longer exist — and
never touches a tag another source (an agent, an import) put on. A customer who already has
the tag from another source keeps that row: one tag per customer, and the human's wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import yaml
from sqlalchemy import (
    Integer,
    Table,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy.orm import Session, aliased

from bot.clock import Clock, utcnow
from bot.db import insert_or_ignore
from bot.errors import InvalidInput
from bot.models import Customer, Product
from bot.models.base import UTCDateTime
from bot.models.crm import CustomerTag
from bot.services.segments import MAX_TEXT, compile_rule, parse_rule

RULES_PATH = Path(__file__).resolve().parent.parent / "tag_rules.yml"
# What a conversation turn can change about a customer; rules on purchases, membership and
# RFM change with store data and are the recompute job's (``apply_tag_rules``).
TURN_KINDS = frozenset({"intent", "outcome", "language", "last_contact"})
RULE_SOURCE = "bot_rule"  # bot.models.crm.TAG_SOURCES
TEMPLATES = {"category": "{category}"}
ENTRY_FIELDS = {"tag", "description", "rule", "for_each"}


class TagRuleError(InvalidInput):
    code = "invalid_tag_rule"


@dataclass(frozen=True)
class TagRule:
    tag: str
    description: str
    rule: dict[str, Any]


def load_rule_entries(path: Path = RULES_PATH) -> list[dict[str, Any]]:
    """The entries of a tag rules file, as written (templates not yet expanded)."""
    entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    if not isinstance(entries, list):
        raise TagRuleError(f"{path.name}: expected a list of {{tag, description, rule}}")
    return entries


_turn_rules_cache: dict[tuple[Path, int], list[TagRule]] = {}


def _turn_rules(session: Session, entries: list[dict[str, Any]] | None) -> list[TagRule]:
    """The checked rules a turn can change; the rules file is read again when it changes."""
    if entries is not None:
        wanted = [e for e in entries if isinstance(e, Mapping) and _uses(e.get("rule"), TURN_KINDS)]
        return expand_rules(session=session, entries=wanted)
    key = (RULES_PATH, RULES_PATH.stat().st_mtime_ns)
    if key not in _turn_rules_cache:
        wanted = [e for e in load_rule_entries() if _uses(e.get("rule"), TURN_KINDS)]
        _turn_rules_cache.clear()
        _turn_rules_cache[key] = expand_rules(session=session, entries=wanted)
    return _turn_rules_cache[key]


def _substitute(value: Any, placeholder: str, text: str) -> Any:
    if isinstance(value, str):
        return value.replace(placeholder, text)
    if isinstance(value, list):
        return [_substitute(v, placeholder, text) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, placeholder, text) for k, v in value.items()}
    return value


def _uses(rule: Any, kinds: frozenset[str]) -> bool:
    """Whether a rule (or any part of it) has a condition of one of these kinds."""
    if isinstance(rule, dict):
        return bool(kinds & set(rule)) or any(_uses(v, kinds) for v in rule.values())
    if isinstance(rule, list):
        return any(_uses(v, kinds) for v in rule)
    return False


def _uses_tags(rule: Any) -> bool:
    return _uses(rule, frozenset({"tag"}))


def _checked(entry: Mapping[str, Any], where: str) -> TagRule:
    tag, rule = entry.get("tag"), entry.get("rule")
    if not isinstance(tag, str) or not tag.strip() or len(tag) > MAX_TEXT:
        raise TagRuleError(f"{where}: a tag is a non-empty text of at most {MAX_TEXT} characters")
    if not isinstance(rule, dict):
        raise TagRuleError(f"{where} ({tag}): expected a rule")
    if _uses_tags(rule):
        raise TagRuleError(f"{where} ({tag}): a tag rule cannot depend on tags")
    try:
        parse_rule(rule)
    except InvalidInput as exc:
        raise TagRuleError(f"{where} ({tag}): {exc}") from None
    return TagRule(tag, str(entry.get("description") or ""), rule)


def expand_rules(*, session: Session, entries: Iterable[Mapping[str, Any]]) -> list[TagRule]:
    """Check the entries and expand templates (``for_each: category``: one rule per product
    category in the catalogue). Raises TagRuleError, saying which entry is wrong."""
    rules: list[TagRule] = []
    categories: list[str] | None = None
    for i, entry in enumerate(entries):
        where = f"tag rule {i + 1}"
        if not isinstance(entry, Mapping) or set(entry) - ENTRY_FIELDS:
            raise TagRuleError(f"{where}: expected the fields {', '.join(sorted(ENTRY_FIELDS))}")
        each = entry.get("for_each")
        if each is None:
            rules.append(_checked(entry, where))
            continue
        if each not in TEMPLATES:
            raise TagRuleError(f"{where}: for_each must be one of {', '.join(TEMPLATES)}")
        if categories is None:
            categories = list(
                session.scalars(select(Product.category).distinct().order_by(Product.category))
            )
        body = {k: v for k, v in entry.items() if k != "for_each"}
        rules += [_checked(_substitute(body, TEMPLATES[each], c), where) for c in categories]
    tags = [r.tag for r in rules]
    if len(set(tags)) != len(tags):
        raise TagRuleError(f"a tag has two rules: {sorted({t for t in tags if tags.count(t) > 1})}")
    return rules


def apply_tag_rules(
    *,
    session: Session,
    rules: Iterable[Mapping[str, Any]] | None = None,
    clock: Clock = utcnow,
) -> dict[str, int]:
    """Recompute every rule-derived tag; ``rules`` are entries as in ``bot/tag_rules.yml``
    (the default) and are the whole rule set. Returns, per tag, how many customers its rule
    selects. Three statements per rule, all set-based; the caller commits."""
    checked = expand_rules(session=session, entries=load_rule_entries() if rules is None else rules)
    now = clock()
    session.flush()
    session.execute(
        delete(CustomerTag).where(
            CustomerTag.source == RULE_SOURCE, CustomerTag.tag.not_in([r.tag for r in checked])
        )
    )
    counts: dict[str, int] = {}
    for rule in checked:
        where = compile_rule(rule.rule, clock=clock)
        selected = select(Customer.id).where(where)
        session.execute(
            delete(CustomerTag).where(
                CustomerTag.tag == rule.tag,
                CustomerTag.source == RULE_SOURCE,
                CustomerTag.customer_id.not_in(selected),
            )
        )
        held = aliased(CustomerTag)
        session.execute(
            insert(CustomerTag).from_select(
                ["customer_id", "tag", "source", "created_at"],
                select(
                    Customer.id,
                    literal(rule.tag),
                    literal(RULE_SOURCE),
                    literal(now, UTCDateTime),
                ).where(
                    where, ~exists().where(held.customer_id == Customer.id, held.tag == rule.tag)
                ),
            )
        )
        counts[rule.tag] = int(
            session.scalar(select(func.count()).select_from(Customer).where(where)) or 0
        )
    return counts


def _intent_names(rule: Any) -> set[str]:
    """The intents a rule's ``intent`` conditions name (negated ones too)."""
    if isinstance(rule, list):
        return set().union(*(_intent_names(v) for v in rule)) if rule else set()
    if not isinstance(rule, dict):
        return set()
    names: set[str] = set()
    for kind, value in rule.items():
        if kind == "intent":
            names.add(value if isinstance(value, str) else str(value.get("name")))
        else:
            names |= _intent_names(value)
    return names


# A turn records its messages, language, contact time and outcomes, so a rule on those can
# change with any turn; a rule on intents only with a turn of an intent it names.
ANY_TURN_KINDS = TURN_KINDS - {"intent"}


def _changed_by(rule: TagRule, intent: str | None) -> bool:
    if intent is None or _uses(rule.rule, ANY_TURN_KINDS):
        return True
    return intent in _intent_names(rule.rule)


_TAG_ROW = {
    "customer_id": bindparam("customer_id"),
    "tag": bindparam("tag"),
    "source": RULE_SOURCE,
    "created_at": bindparam("created_at"),
}
_TAGS = cast(Table, CustomerTag.__table__)
# Built once per database: a turn of a tagged intent runs it.
_ADD_TAG = {d: insert_or_ignore(d, _TAGS, _TAG_ROW) for d in ("postgresql", "sqlite")}


def _add_tag(session: Session, *, customer_id: int, tag: str, now: datetime) -> None:
    """Add a rule tag unless the customer has it already (another conversation of theirs may
    add it at the same moment): INSERT … ON CONFLICT DO NOTHING, one statement."""
    conn = session.connection()
    conn.execute(
        _ADD_TAG[conn.dialect.name], {"customer_id": customer_id, "tag": tag, "created_at": now}
    )


def _build_turn_query(checked: list[TagRule], now: datetime) -> Any:
    """One SELECT over the customer ``:customer_id``: per rule, whether it holds and who
    holds its tag (None: nobody)."""
    if not checked:
        return None
    columns: list[Any] = []
    customer_id = bindparam("customer_id", type_=Integer)
    for i, r in enumerate(checked):
        holds = compile_rule(r.rule, clock=lambda: now)
        columns.append(case((holds, True), else_=False).label(f"r{i}"))
        columns.append(
            select(CustomerTag.source)
            .where(CustomerTag.customer_id == customer_id, CustomerTag.tag == r.tag)
            .scalar_subquery()
            .label(f"h{i}")
        )
    return select(*columns).where(Customer.id == customer_id)


def _said(rule: TagRule, intent: str | None) -> bool:
    """Whether the rule is just "said ``intent``" (within some days): then the turn that
    recorded a shopper message with that intent makes it hold, with nothing to look up."""
    if intent is None or set(rule.rule) != {"intent"}:
        return False
    value = rule.rule["intent"]
    return (value if isinstance(value, str) else value.get("name")) == intent


@dataclass(frozen=True)
class _TurnPlan:
    said: list[TagRule]  # hold: this turn said their intent
    checked: list[TagRule]  # evaluated by ``query``
    query: Any


def _plan(rules: list[TagRule], intent: str | None, now: datetime) -> _TurnPlan:
    wanted = [r for r in rules if _changed_by(r, intent)]
    said = [r for r in wanted if _said(r, intent)]
    checked = [r for r in wanted if not _said(r, intent)]
    return _TurnPlan(said, checked, _build_turn_query(checked, now))


_turn_plan_cache: dict[tuple[Any, ...], _TurnPlan] = {}


def _turn_plan(session: Session, intent: str | None, now: datetime) -> _TurnPlan:
    """The rules file's plan for a turn of this intent, built once a minute (its time
    windows are then at most a minute behind the clock) rather than once a turn."""
    all_rules = _turn_rules(session, None)
    minute = now.replace(second=0, microsecond=0)
    key = (id(all_rules), intent, minute)
    if key not in _turn_plan_cache:
        if len(_turn_plan_cache) > 256:
            _turn_plan_cache.clear()
        _turn_plan_cache[key] = _plan(all_rules, intent, minute)
    return _turn_plan_cache[key]


def apply_turn_rules(
    *,
    session: Session,
    customer_id: int,
    intent: str | None = None,
    rules: list[dict[str, Any]] | None = None,
    clock: Clock = utcnow,
) -> dict[str, bool]:
    """After a turn, bring one customer's rule tags up to date at once — the rules that this
    turn can change: those naming its ``intent`` (the intent of the shopper message the turn
    has just recorded) and those on outcomes, language and last contact (all turn rules
    when ``intent`` is None, as after a login merge). Rules on purchases and RFM, and a time
    window running out, are the recompute job's (``apply_tag_rules``).

    A rule that is just "said this intent" holds at once: its tag is inserted unless held
    (ON CONFLICT DO NOTHING). The others are evaluated for this customer by one query that
    also reads the tags held, and a tag is added or removed only when it changed. A turn no
    rule names costs no statement at all. Same semantics as ``apply_tag_rules``: another
    source's tag is never touched. Returns rule tag → holds."""
    now = clock()
    session.flush()  # the statements below go to the connection: no autoflush
    plan = (
        _turn_plan(session, intent, now)
        if rules is None
        else _plan(_turn_rules(session, rules), intent, now)
    )
    verdict: dict[str, bool] = {}
    for r in plan.said:
        _add_tag(session, customer_id=customer_id, tag=r.tag, now=now)
        verdict[r.tag] = True
    if plan.query is None:
        return verdict
    row = session.connection().execute(plan.query, {"customer_id": customer_id}).first()
    if row is None:
        return verdict
    for i, r in enumerate(plan.checked):
        holds, held_by = bool(row[2 * i]), row[2 * i + 1]
        verdict[r.tag] = holds
        if holds and held_by is None:
            _add_tag(session, customer_id=customer_id, tag=r.tag, now=now)
        elif not holds and held_by == RULE_SOURCE:
            session.execute(
                delete(CustomerTag).where(
                    CustomerTag.customer_id == customer_id,
                    CustomerTag.tag == r.tag,
                    CustomerTag.source == RULE_SOURCE,
                )
            )
    return verdict
