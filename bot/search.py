"""Full-text search over conversation messages, Chinese and English, on SQLite and PostgreSQL.

One function, ``segment``, turns text into space-separated words for both the index and the
queries: NFKC (full-width → half-width), lower-cased, cut by jieba in search-engine mode
(long words also give their shorter words, so 中华人民共和国 is found by 共和国) with the
project's dictionaries (data/jieba/), and punctuation, symbols and spaces dropped.

The index is the ``message_search`` table (one row per indexed message, keyed by
``message_id`` with its ``conversation_id``):

- on PostgreSQL ``terms`` is a ``tsvector`` made with ``array_to_tsvector`` from exactly those
  words (no parser or stemmer in between, which is the 'simple' configuration without its
  parser's own splitting), under a GIN index; a query is a ``tsquery`` of the same words.
- on SQLite ``terms`` holds the words as text, and the FTS5 table ``message_fts`` (external
  content over ``message_search``, ``ascii`` tokenizer so every non-ASCII character is part of
  a word and only the spaces we put in separate them) is the index, kept in step by triggers
  (migration 0010).

So both answer the same question — messages containing every word of the query — and give
the same hits. Shopper and agent messages are indexed (bot replies are the domain's own
templates), and what is indexed is the text as the ops role sees it (``bot.privacy``): a
phone number typed in chat cannot be searched for, while the store's order and tracking
numbers stay findable.

New messages are indexed in their own transaction when this module is imported (the API
imports it through ``bot.services.review``): shopper messages through
``conversations.register_stored_hook`` (they are stored with a table statement), agent
messages and edits by a session ``after_flush`` hook; ``python -m bot.cli reindex``
rebuilds the index for existing data. ``delete_for_conversations`` removes index rows (the
FTS5 rows follow through the triggers; the foreign keys also cascade from ``message``); it
is registered as a transcript hook of ``bot.privacy.erasure``, so erasure and retention call
it.
"""

from __future__ import annotations

import logging
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import (
    Integer,
    Table,
    Text,
    bindparam,
    cast,
    delete,
    event,
    func,
    insert,
    literal_column,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import TSQUERY
from sqlalchemy.orm import Session, UOWTransaction
from sqlalchemy.sql.elements import ColumnElement

from bot.errors import InvalidInput
from bot.models.conversation import Message
from bot.models.review import MessageSearch
from bot.privacy.erasure import register_transcript_hook
from bot.privacy.masking import StoreIdLookup
from bot.privacy.views import for_role
from bot.services.conversations import MessageView, register_stored_hook
from bot.settings import PROJECT_ROOT

INDEXED_ROLES = ("shopper", "agent")
MAX_INDEXED_CHARS = 4000
MAX_QUERY_WORDS = 16
MAX_QUERY_CHARS = 200
FTS_TABLE = "message_fts"
# What is indexed is what this role sees.
INDEX_ROLE = "ops"

_jieba_lock = threading.Lock()
_tokenizer: Any = None


def _jieba() -> Any:
    global _tokenizer
    if _tokenizer is None:
        with _jieba_lock:
            if _tokenizer is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                tok = jieba.Tokenizer()
                for path in sorted((PROJECT_ROOT / "data" / "jieba").glob("*.txt")):
                    tok.load_userdict(str(path))
                _tokenizer = tok
    return _tokenizer


def _keep(ch: str) -> bool:
    # Letters, digits and combining marks make words; punctuation, symbols, spaces and
    # control characters separate them.
    return unicodedata.category(ch)[0] in "LNM"


def segment(text: str) -> str:
    """``text`` as space-separated search words (used for the index and for queries)."""
    folded = unicodedata.normalize("NFKC", text or "")[:MAX_INDEXED_CHARS].lower()
    if not folded.strip():
        return ""
    words: list[str] = []
    seen: set[str] = set()
    for piece in _jieba().cut_for_search(folded, HMM=True):
        word = "".join(ch for ch in piece if _keep(ch))
        if not word:
            # A piece such as "t-shirt" keeps its letters as one word; pure punctuation goes.
            continue
        if word not in seen:
            seen.add(word)
            words.append(word)
    return " ".join(words)


def query_words(query: str) -> list[str]:
    """The words a query searches for (all of them must occur), or ``InvalidInput``."""
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidInput(f"a search is at most {MAX_QUERY_CHARS} characters")
    words = segment(query).split()
    if not words:
        raise InvalidInput("nothing to search for: type a word")
    return words[:MAX_QUERY_WORDS]


def _is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def _terms_value(dialect: str, words: ColumnElement[Any]) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.array_to_tsvector(func.string_to_array(words, " "))
    return words


def matching_message_ids(session: Session, query: str) -> Any:
    """A SELECT of the ids of messages containing every word of ``query`` (a subquery to
    combine with other conditions)."""
    words = query_words(query)
    if _is_sqlite(session):
        match = " ".join(f'"{w}"' for w in words)
        return (
            select(literal_column("rowid", Integer))
            .select_from(text(FTS_TABLE))
            .where(text(f"{FTS_TABLE} MATCH :fts_query").bindparams(fts_query=match))
        )
    return select(MessageSearch.message_id).where(_pg_match(query))


def _pg_match(query: str) -> ColumnElement[bool]:
    # Quoted lexemes, taken as they are (query_words leaves no quote or backslash in them).
    tsquery = " & ".join(f"'{w}'" for w in query_words(query))
    return MessageSearch.terms.op("@@")(cast(bindparam("ts_query", tsquery), TSQUERY))


def matching_conversation_ids(session: Session, query: str) -> Any:
    """A SELECT of the ids of conversations with a message containing every word."""
    if _is_sqlite(session):
        return select(MessageSearch.conversation_id).where(
            MessageSearch.message_id.in_(matching_message_ids(session, query))
        )
    # PostgreSQL: straight from the GIN index, no second look-up by message id.
    return select(MessageSearch.conversation_id).where(_pg_match(query))


@dataclass(frozen=True)
class Hit:
    message_id: int
    conversation_id: str


def search_messages(session: Session, query: str, *, limit: int = 100) -> list[Hit]:
    """Messages containing every word of ``query``, newest first."""
    found = session.execute(
        select(MessageSearch.message_id, MessageSearch.conversation_id)
        .where(MessageSearch.message_id.in_(matching_message_ids(session, query)))
        .order_by(MessageSearch.message_id.desc())
        .limit(max(1, min(limit, 1000)))
    )
    return [Hit(int(m), str(c)) for m, c in found]


# --- keeping the index current ---------------------------------------------------------------


class _Text(NamedTuple):
    message_id: int
    conversation_id: str
    created_at: Any
    text: str
    language: str | None


def _rows(session: Session, messages: Iterable[_Text]) -> list[dict[str, Any]]:
    known = StoreIdLookup(session)
    rows = []
    for m in messages:
        visible = for_role(INDEX_ROLE, m.text or "", known_ids=known, lang=m.language)
        rows.append(
            {
                "message_id": m.message_id,
                "conversation_id": m.conversation_id,
                "created_at": m.created_at,
                "words": segment(visible),
            }
        )
    return rows


_INSERTS: dict[str, Any] = {}


def _write(session: Session, rows: Sequence[dict[str, Any]], *, fresh: bool = False) -> None:
    """Write the index rows, replacing any earlier ones (none to replace when ``fresh``: the
    messages were inserted in this flush)."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    table = MessageSearch.__table__
    assert isinstance(table, Table)
    conn = session.connection()
    if not fresh:
        conn.execute(delete(table).where(table.c.message_id.in_([r["message_id"] for r in rows])))
    if dialect not in _INSERTS:  # built once: this runs with every shopper message
        _INSERTS[dialect] = insert(table).values(
            message_id=bindparam("message_id"),
            conversation_id=bindparam("conversation_id"),
            created_at=bindparam("created_at"),
            terms=_terms_value(dialect, bindparam("words", type_=Text)),
        )
    conn.execute(_INSERTS[dialect], list(rows))


def index_messages(session: Session, messages: Iterable[Message], *, fresh: bool = False) -> int:
    """(Re)index ``messages`` (those of the indexed roles); returns how many were written.
    ``fresh``: they were just inserted, so they have no index rows yet."""
    wanted = [
        _Text(m.id, m.conversation_id, m.created_at, m.text, m.language)
        for m in messages
        if m.role in INDEXED_ROLES and m.id is not None
    ]
    with session.no_autoflush:
        _write(session, _rows(session, wanted), fresh=fresh)
    return len(wanted)


def delete_for_conversations(session: Session, conversation_ids: Iterable[str]) -> int:
    """Remove the index rows of these conversations (e.g. before erasing them); on SQLite
    the FTS5 rows go with them (triggers). Returns the number of rows removed."""
    ids = list(conversation_ids)
    removed = 0
    for i in range(0, len(ids), 500):
        result = session.execute(
            delete(MessageSearch).where(MessageSearch.conversation_id.in_(ids[i : i + 500]))
        )
        removed += int(getattr(result, "rowcount", 0) or 0)
    return removed


def reindex(session: Session, *, batch: int = 2000) -> int:
    """Rebuild the index from every stored message of the indexed roles (in batches by id;
    the caller commits). Returns the number of messages indexed."""
    session.execute(delete(MessageSearch))
    if _is_sqlite(session):
        session.execute(text("INSERT INTO message_fts(message_fts) VALUES ('rebuild')"))
    done, after = 0, 0
    while True:
        page = [
            _Text(*row)
            for row in session.execute(
                select(
                    Message.id,
                    Message.conversation_id,
                    Message.created_at,
                    Message.text,
                    Message.language,
                )
                .where(Message.id > after, Message.role.in_(INDEXED_ROLES))
                .order_by(Message.id)
                .limit(batch)
            )
        ]
        if not page:
            return done
        _write(session, _rows(session, page), fresh=True)  # the table was emptied above
        done += len(page)
        after = page[-1].message_id


def _changed_text(message: Message) -> bool:
    from sqlalchemy import inspect

    return bool(inspect(message).attrs.text.history.has_changes())


def _forget_transcripts(session: Session, conversation_ids: Sequence[str]) -> None:
    delete_for_conversations(session, conversation_ids)


# Erasure and retention remove these conversations' index rows first (their generic pass
# would also find message_search by its conversation_id; this makes it explicit).
register_transcript_hook(_forget_transcripts)


def _index_stored(session: Session, message: MessageView, conversation_id: str) -> None:
    if message.role in INDEXED_ROLES:
        text = _Text(message.id, conversation_id, message.created_at, message.text, None)
        with session.no_autoflush:
            _write(session, _rows(session, [text]), fresh=True)


# Shopper messages are stored with a table statement (the hot path); others through the ORM.
register_stored_hook(_index_stored)


@event.listens_for(Session, "after_flush")
def _index_after_flush(session: Session, _flush: UOWTransaction) -> None:
    fresh = [o for o in session.new if isinstance(o, Message) and o.role in INDEXED_ROLES]
    edited = [
        o
        for o in session.dirty
        if isinstance(o, Message) and o.role in INDEXED_ROLES and _changed_text(o)
    ]
    if fresh:
        index_messages(session, fresh, fresh=True)
    if edited:
        index_messages(session, edited)
