"""What ops review feeds back, from the conversations ``bot.services.review`` lists:

- ``corrected_examples_yaml``: the confirmed and corrected turns as Rasa NLU training data
  (YAML version "3.1", grouped per intent, entities annotated ``[text](entity)``), ready to
  drop into data/nlu/. Only text without personal data is exported: a turn whose text the
  masker changes (a phone number, an address, …) is left out — a masked placeholder is not
  what shoppers type, and the raw text may not leave the database as training data. Turns
  whose text is already in data/nlu/ are left out too (retraining on it changes nothing, and
  under another intent it would make ``rasa data validate`` fail); the header says how many
  were skipped and why.
- ``conversation_test_stories``: whole conversations as Rasa test stories (``user:`` text
  with ``intent:``, then the actions that ran), with reviewers' corrections applied and text
  as the ``export`` role sees it.
- ``export_rows`` (and the CSV / JSON chunks): one row per conversation with first response
  time, resolution time, satisfaction and the customer's tags.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.models import Conversation, Message, Outcome
from bot.models.crm import CustomerTag
from bot.models.handoff import Handoff
from bot.models.review import TurnLabel
from bot.privacy.masking import StoreIdLookup
from bot.privacy.views import for_role
from bot.services.review import (
    MAX_STORY_CONVERSATIONS,
    ReviewFilters,
    annotate,
    clean_entity,
    conversation_conditions,
    intent_choices,
    label_entities,
    page_cursor,
    page_ids,
    summaries,
)
from bot.settings import PROJECT_ROOT
from bot.spreadsheet import cell

EXPORT_BATCH = 500

# --- corrected examples as Rasa NLU data -----------------------------------------------------

_MARKUP = re.compile(r"\[([^\[\]]+)\](?:\([^()]*\)|\{[^{}]*\})")


@lru_cache(maxsize=2)
def _training_texts(root: Path = PROJECT_ROOT / "data" / "nlu") -> dict[str, str]:
    """Example text (markup removed) → intent, of the project's NLU training data."""
    found: dict[str, str] = {}
    for path in sorted(root.rglob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for block in data.get("nlu") or []:
            if not isinstance(block, dict) or "intent" not in block:
                continue
            for line in str(block.get("examples") or "").splitlines():
                line = line.strip()
                if line.startswith("- "):
                    found[_MARKUP.sub(r"\1", line[2:]).strip()] = str(block["intent"])
    return found


def _one_line(text: str) -> tuple[str, int]:
    """The text on one line (line breaks and tabs → spaces, same length) without outer
    spaces, and how many characters were cut from its start."""
    flat = re.sub(r"[\r\n\t\v\f]", " ", text)
    lead = len(flat) - len(flat.lstrip())
    return flat.strip(), lead


@dataclass
class ExportReport:
    examples: int = 0
    personal_data: int = 0
    in_training_data: int = 0
    unplaceable: int = 0


def corrected_examples_yaml(
    session: Session, *, since: datetime | None = None, report: ExportReport | None = None
) -> str:
    """Confirmed and relabelled shopper turns (labelled at or after ``since``) as Rasa NLU
    training data: YAML version "3.1", one block per intent, entities annotated. Turns with
    personal data in their text, turns already in data/nlu/ and turns whose entities do not
    fit their text are left out (counted in the header and in ``report``)."""
    report = report if report is not None else ExportReport()
    query = (
        select(TurnLabel, Message.text, Message.entities, Message.language)
        .join(Message, Message.id == TurnLabel.message_id)
        .order_by(TurnLabel.labelled_at, TurnLabel.id)
    )
    if since is not None:
        query = query.where(TurnLabel.labelled_at >= since)
    intents = set(intent_choices())
    training = _training_texts()
    known = StoreIdLookup(session)
    latest: dict[str, tuple[str, str]] = {}  # plain text → (intent, annotated); latest wins
    for label, raw, own_entities, language in session.execute(query):
        raw = raw or ""
        if label.intent not in intents:
            continue
        if for_role("export", raw, known_ids=known, lang=language) != raw:
            report.personal_data += 1
            continue
        text, lead = _one_line(raw)
        if not text:
            continue
        if text in training:
            report.in_training_data += 1
            continue
        source = label.entities if label.status == "relabelled" else own_entities
        entities = []
        for e in source or []:
            clean = clean_entity(e)
            if not clean:
                continue
            if "start" in clean:
                clean["start"] -= lead
                clean["end"] -= lead
            entities.append(clean)
        annotated = annotate(text, entities)
        if annotated is None:
            report.unplaceable += 1
            continue
        latest.pop(text, None)
        latest[text] = (label.intent, annotated)
    per_intent: dict[str, list[str]] = {}
    for intent, annotated in latest.values():
        per_intent.setdefault(intent, []).append(annotated)
    report.examples = sum(len(v) for v in per_intent.values())
    lines = [
        "# Corrected examples from Kefu's ops review (bot.services.review_export).",
        f"# {report.examples} examples; left out: {report.personal_data} with personal data, "
        f"{report.in_training_data} already in data/nlu/, "
        f"{report.unplaceable} whose entities did not fit the text.",
        'version: "3.1"',
    ]
    if not per_intent:
        lines.append("nlu: []")
        return "\n".join(lines) + "\n"
    lines.append("nlu:")
    for intent in sorted(per_intent):
        lines.append(f"- intent: {intent}")
        lines.append("  examples: |")
        lines.extend(f"    - {example}" for example in per_intent[intent])
    return "\n".join(lines) + "\n"


# --- conversations as Rasa test stories ------------------------------------------------------


def conversation_test_stories(session: Session, ids: Iterable[str]) -> str:
    """Rasa test stories of the conversations ``ids`` (in that order, at most
    MAX_STORY_CONVERSATIONS): each shopper turn Rasa handled as ``user`` (text as the export
    role sees it; entities annotated when the text has no personal data) with its intent —
    the reviewer's where the turn was relabelled — then the actions that ran. A story ends
    at the first turn Rasa did not handle (a person had taken over)."""
    known = StoreIdLookup(session)
    stories = []
    for cid in list(dict.fromkeys(ids))[:MAX_STORY_CONVERSATIONS]:
        labels = {
            lab.message_id: lab
            for lab in session.scalars(select(TurnLabel).where(TurnLabel.conversation_id == cid))
        }
        steps: list[dict[str, Any]] = []
        for m in session.scalars(
            select(Message)
            .where(Message.conversation_id == cid, Message.role == "shopper")
            .order_by(Message.id)
        ):
            label = labels.get(m.id)
            intent = label.intent if label is not None else m.intent
            if not intent:
                break
            raw = m.text or ""
            shown = for_role("export", raw, known_ids=known, lang=m.language)
            text, lead = _one_line(shown)
            if shown == raw:
                entities = []
                for e in label_entities(label, m):
                    clean = dict(e)
                    if "start" in clean:
                        clean["start"] -= lead
                        clean["end"] -= lead
                    entities.append(clean)
                text = annotate(text, entities) or text
            steps.append({"user": text, "intent": intent})
            steps.extend({"action": a} for a in (m.actions or []) if a != "action_listen")
        if steps:
            stories.append({"story": f"conversation {cid}", "steps": steps})
    header = "# Conversations from Kefu's ops review as Rasa test stories (bot.services.review_export).\n"
    body = yaml.safe_dump(
        {"version": "3.1", "stories": stories}, allow_unicode=True, sort_keys=False, width=1000
    )
    return header + body


def story_ids(
    *, session: Session, filters: ReviewFilters, limit: int = MAX_STORY_CONVERSATIONS
) -> list[str]:
    """The newest ``limit`` conversations matching ``filters``."""
    where = conversation_conditions(session, filters)
    return [i for i, _ in page_ids(session, where, None, limit)]


# --- conversation export (CSV / JSON) --------------------------------------------------------

EXPORT_FIELDS = (
    "conversation_id",
    "created_at",
    "last_message_at",
    "language",
    "state",
    "customer",
    "shopper_turns",
    "intents",
    "min_confidence",
    "fallback",
    "handoff_reasons",
    "outcomes",
    "first_response_s",
    "resolution_s",
    "satisfaction",
    "tags",
    "review_status",
)


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return round((later - earlier).total_seconds(), 3)


def _export_batch(session: Session, ids: list[str]) -> list[dict[str, Any]]:
    rows_by_id = {r.id: r for r in summaries(session, ids, "export")}
    first_shopper: dict[str, int] = dict(
        session.execute(
            select(Message.conversation_id, func.min(Message.id))
            .where(Message.conversation_id.in_(ids), Message.role == "shopper")
            .group_by(Message.conversation_id)
        )
        .tuples()
        .all()
    )
    shopper_at: dict[str, datetime] = dict(
        session.execute(
            select(Message.conversation_id, Message.created_at).where(
                Message.id.in_(list(first_shopper.values()))
            )
        )
        .tuples()
        .all()
    )
    last_reply: dict[str, datetime] = dict(
        session.execute(
            select(Message.conversation_id, func.max(Message.created_at))
            .where(Message.conversation_id.in_(ids), Message.role.in_(("bot", "agent")))
            .group_by(Message.conversation_id)
        )
        .tuples()
        .all()
    )
    # Replies before the shopper's first message (a welcome) are no response to it.
    early: dict[str, datetime] = {}
    for cid, at in session.execute(
        select(Message.conversation_id, Message.created_at)
        .where(Message.conversation_id.in_(ids), Message.role.in_(("bot", "agent")))
        .order_by(Message.id)
    ):
        start = shopper_at.get(cid)
        if start is not None and at >= start and cid not in early:
            early[cid] = at
    handoffs: dict[str, list[tuple[str, datetime | None]]] = {}
    for cid, reason, ended in session.execute(
        select(Handoff.conversation_id, Handoff.reason, Handoff.ended_at)
        .where(Handoff.conversation_id.in_(ids))
        .order_by(Handoff.id)
    ):
        handoffs.setdefault(cid, []).append((reason, ended))
    outcomes: dict[str, list[str]] = {}
    for cid, kind in session.execute(
        select(Outcome.conversation_id, Outcome.kind)
        .where(Outcome.conversation_id.in_(ids))
        .order_by(Outcome.id)
    ):
        outcomes.setdefault(str(cid), []).append(kind)
    tags: dict[str, list[str]] = {}
    for cid, tag in session.execute(
        select(Conversation.id, CustomerTag.tag)
        .join(CustomerTag, CustomerTag.customer_id == Conversation.customer_id)
        .where(Conversation.id.in_(ids))
        .order_by(CustomerTag.tag)
    ):
        tags.setdefault(cid, []).append(tag)
    rows = []
    for cid in ids:
        s = rows_by_id[cid]
        start = shopper_at.get(cid)
        stays = handoffs.get(cid, [])
        if stays:
            ended = [e for _, e in stays if e is not None]
            resolved_at = max(ended) if len(ended) == len(stays) else None
        else:
            resolved_at = last_reply.get(cid) if s.state in ("bot", "closed") else None
        rows.append(
            {
                "conversation_id": cid,
                "created_at": s.created_at.isoformat(),
                "last_message_at": s.last_message_at.isoformat(),
                "language": s.language,
                "state": s.state,
                "customer": s.customer,
                "shopper_turns": s.turns,
                "intents": s.intents,
                "min_confidence": s.min_confidence,
                "fallback": s.fallback,
                "handoff_reasons": list(dict.fromkeys(r for r, _ in stays)),
                "outcomes": outcomes.get(cid, []),
                "first_response_s": _seconds(early.get(cid), start),
                "resolution_s": _seconds(resolved_at, start),
                "satisfaction": s.csat,
                "tags": tags.get(cid, []),
                "review_status": s.review_status,
            }
        )
    return rows


def export_rows(*, session: Session, filters: ReviewFilters) -> Iterator[dict[str, Any]]:
    """One dict per matching conversation, newest first (fields: ``EXPORT_FIELDS``).

    ``first_response_s``: seconds from the shopper's first message to the first bot or
    agent message after it. ``resolution_s``: to the end of the last stay with a person
    when every stay has ended, else (never handed off, with the bot or closed) to the last
    bot or agent message; empty while a person still has it or nothing answered.
    ``satisfaction``: the latest answered score (1-5). No message text is exported."""
    where = conversation_conditions(session, filters)
    cursor: str | None = None
    while True:
        page = page_ids(session, where, cursor, EXPORT_BATCH)
        if not page:
            return
        yield from _export_batch(session, [i for i, _ in page])
        if len(page) < EXPORT_BATCH:
            return
        cursor = page_cursor(page[-1][1], page[-1][0])


def export_csv(*, session: Session, filters: ReviewFilters) -> Iterator[str]:
    """The export as CSV text, in chunks (a header line first)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_FIELDS)
    for i, row in enumerate(export_rows(session=session, filters=filters), start=1):
        writer.writerow([cell(row[name]) for name in EXPORT_FIELDS])
        if i % 200 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def export_json(*, session: Session, filters: ReviewFilters) -> Iterator[str]:
    """The export as a JSON array, in chunks."""
    yield "["
    for i, row in enumerate(export_rows(session=session, filters=filters)):
        yield ("," if i else "") + "\n" + json.dumps(row, ensure_ascii=False)
    yield "\n]\n"


__all__ = [
    "EXPORT_FIELDS",
    "ExportReport",
    "conversation_test_stories",
    "corrected_examples_yaml",
    "export_csv",
    "export_json",
    "export_rows",
    "story_ids",
]
