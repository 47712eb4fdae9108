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
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import case, delete, exists, func, insert, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from bot.clock import Clock, utcnow
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


def apply_turn_rules(
    *,
    session: Session,
    customer_id: int,
    rules: list[dict[str, Any]] | None = None,
    clock: Clock = utcnow,
) -> dict[str, bool]:
    """After a turn, bring one customer's rule tags up to date at once — the rules that a
    conversation can change (``TURN_KINDS``: intent, outcome, language, last contact); the
    others wait for the recompute job. One query evaluates them all for this customer and one
    reads the tags held; a tag is added or removed only when it changed. Same semantics as
    ``apply_tag_rules``: another source's tag is never touched. Returns rule tag → holds."""
    checked = _turn_rules(session, rules)
    if not checked:
        return {}
    holds = session.execute(
        select(
            *(
                case((compile_rule(r.rule, clock=clock), True), else_=False).label(f"r{i}")
                for i, r in enumerate(checked)
            )
        ).where(Customer.id == customer_id)
    ).first()
    if holds is None:
        return {}
    verdict = {r.tag: bool(h) for r, h in zip(checked, holds, strict=True)}
    held: dict[str, str] = {
        tag: source
        for tag, source in session.execute(
            select(CustomerTag.tag, CustomerTag.source).where(
                CustomerTag.customer_id == customer_id, CustomerTag.tag.in_(list(verdict))
            )
        )
    }
    now = clock()
    for tag, yes in verdict.items():
        if yes and tag not in held:
            try:
                with session.begin_nested():  # another conversation of theirs may add it too
                    session.add(
                        CustomerTag(
                            customer_id=customer_id, tag=tag, source=RULE_SOURCE, created_at=now
                        )
                    )
            except IntegrityError:
                pass
        elif not yes and held.get(tag) == RULE_SOURCE:
            session.execute(
                delete(CustomerTag).where(
                    CustomerTag.customer_id == customer_id,
                    CustomerTag.tag == tag,
                    CustomerTag.source == RULE_SOURCE,
                )
            )
    return verdict
