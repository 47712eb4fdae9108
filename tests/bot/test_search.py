"""The search words (``bot.search.segment``) and the index on SQLite FTS5 and PostgreSQL
full-text search: the same hits on both, and the same as the definition (every word of the
query among the message's words)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from bot import search
from bot.cli import migrate
from bot.db import make_engine
from bot.errors import InvalidInput
from bot.models import Conversation, Message, Visitor
from bot.models.review import MessageSearch
from tests.support.postgres import create_database

AT = datetime(2031, 1, 1, tzinfo=timezone.utc)

CORPUS = [
    "我的订单到哪了",
    "我想退货，衣服太大了！",
    "退货退款要多久？",
    "这件衬衫有蓝色的吗",
    "蓝色衬衫M码还有货吗？？",
    "快递太慢了，我要投诉",
    "中华人民共和国的发票怎么开",
    "Where is my ORDER?",
    "I want to return this shirt, it's too big.",
    "Do you have the blue shirt in size M?",
    "The parcel is late!!! I'd like a refund",
    "ＦＵＬＬ－ＷＩＤＴＨ ｔｅｘｔ ａｎｄ 全角数字１２３",
    "order 538872953711 please",
    "refund refund refund",
    "t-shirt 退货",
]


def test_segment_chinese_words() -> None:
    assert search.segment("我的订单到哪了") == "我 的 订单 到 哪 了"
    assert search.segment("我想退货，衣服太大了！").split() == [
        "我",
        "想",
        "退货",
        "衣服",
        "太大",
        "了",
    ]
    # Search-engine mode: a long word also gives the words inside it.
    words = search.segment("中华人民共和国").split()
    assert {"中华", "共和国", "中华人民共和国"} <= set(words)


def test_segment_english_and_punctuation() -> None:
    assert search.segment("Where is my ORDER?") == "where is my order"
    assert search.segment("It's   too big... (really)") == "it s too big really"
    assert search.segment("refund refund") == "refund"  # each word once
    assert search.segment("！？。，、") == "" and search.segment("") == ""


def test_segment_folds_full_width() -> None:
    assert search.segment("ＦＵＬＬ－ＷＩＤＴＨ ｔｅｘｔ") == "full width text"
    assert search.segment("全角数字１２３") == search.segment("全角数字123")
    assert "123" in search.segment("全角数字１２３").split()


def test_query_words_rejects_nothing_to_search() -> None:
    with pytest.raises(InvalidInput, match="nothing to search"):
        search.query_words("  ？！ ")
    with pytest.raises(InvalidInput, match="at most"):
        search.query_words("字" * 201)
    assert len(search.query_words(" ".join(f"w{i}" for i in range(40)))) == search.MAX_QUERY_WORDS


def _fill(engine: Engine) -> dict[str, int]:
    ids = {}
    with Session(engine) as session:
        session.add(Visitor(id="vsearch", created_at=AT))
        session.flush()
        session.add(
            Conversation(id="csearch", visitor_id="vsearch", created_at=AT, last_message_at=AT)
        )
        session.flush()
        for i, body in enumerate(CORPUS):
            message = Message(
                uid=f"s{i}",
                conversation_id="csearch",
                role="shopper" if i % 3 else "agent",
                text=body,
                created_at=AT,
            )
            session.add(message)
            session.flush()
            ids[body] = message.id
        # A bot reply is not indexed.
        session.add(
            Message(
                uid="sbot", conversation_id="csearch", role="bot", text="退货 bot", created_at=AT
            )
        )
        session.commit()
    return ids


@pytest.fixture(scope="module")
def engines(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: str
) -> Iterator[dict[str, tuple[Engine, dict[str, int]]]]:
    lite = f"sqlite:///{Path(tmp_path_factory.mktemp('search')) / 'search.db'}"
    pg = create_database(postgres_server, "kefu_search")
    out = {}
    for name, url in (("sqlite", lite), ("postgresql", pg)):
        migrate(url)
        engine = make_engine(url)
        out[name] = (engine, _fill(engine))
    yield out
    for engine, _ in out.values():
        engine.dispose()


QUERIES = [
    "订单",
    "退货",
    "退货 退款",
    "衬衫",
    "蓝色 衬衫",
    "投诉",
    "共和国",
    "发票",
    "order",
    "ORDER",
    "ｏｒｄｅｒ",
    "shirt",
    "blue shirt",
    "refund",
    "full width",
    "１２３",
    "538872953711",
    "衬衫 shirt",
    "nothingmatches",
    "t-shirt",
]


def _expected(ids: dict[str, int], query: str) -> set[int]:
    words = set(search.query_words(query))
    return {mid for body, mid in ids.items() if words <= set(search.segment(body).split())}


@pytest.mark.postgres
@pytest.mark.parametrize("query", QUERIES)
def test_both_backends_give_the_same_hits(
    engines: dict[str, tuple[Engine, dict[str, int]]], query: str
) -> None:
    found = {}
    for name, (engine, ids) in engines.items():
        with Session(engine) as session:
            found[name] = {h.message_id for h in search.search_messages(session, query)}
        assert found[name] == _expected(ids, query), name
    # Message ids are the same on both (filled in the same order).
    assert found["sqlite"] == found["postgresql"]


@pytest.mark.postgres
def test_hits_in_both_languages(engines: dict[str, tuple[Engine, dict[str, int]]]) -> None:
    for engine, ids in engines.values():
        with Session(engine) as session:

            def hits(q: str, session: Session = session) -> set[int]:
                return {h.message_id for h in search.search_messages(session, q)}

            assert hits("退货") == {
                ids["我想退货，衣服太大了！"],
                ids["退货退款要多久？"],
                ids["t-shirt 退货"],
            }
            assert hits("refund") == {
                ids["The parcel is late!!! I'd like a refund"],
                ids["refund refund refund"],
            }
            assert hits("ＲＥＦＵＮＤ") == hits("refund")
            assert hits("蓝色 衬衫") == {ids["这件衬衫有蓝色的吗"], ids["蓝色衬衫M码还有货吗？？"]}
            assert hits("全角数字") == {ids["ＦＵＬＬ－ＷＩＤＴＨ ｔｅｘｔ ａｎｄ 全角数字１２３"]}
            assert hits("bot") == set()  # bot replies are not indexed


@pytest.mark.postgres
def test_delete_and_reindex(engines: dict[str, tuple[Engine, dict[str, int]]]) -> None:
    for name, (engine, _ids) in engines.items():
        with Session(engine) as session:
            assert search.delete_for_conversations(session, ["csearch"]) == len(CORPUS)
            assert search.search_messages(session, "退货") == []
            if name == "sqlite":  # the FTS5 rows went with the index rows
                assert session.scalar(text("SELECT count(*) FROM message_fts")) == 0
            assert search.reindex(session) == len(CORPUS)
            assert session.scalar(select(func.count()).select_from(MessageSearch)) == len(CORPUS)
            assert len(search.search_messages(session, "退货")) == 3
            session.commit()


def test_new_and_edited_messages_are_indexed(session: Session) -> None:
    session.add(Visitor(id="vnew", created_at=AT))
    session.flush()
    session.add(Conversation(id="cnew", visitor_id="vnew", created_at=AT, last_message_at=AT))
    session.flush()
    message = Message(
        uid="new-1", conversation_id="cnew", role="shopper", text="羽绒服怎么洗", created_at=AT
    )
    session.add(message)
    session.flush()
    assert [h.message_id for h in search.search_messages(session, "羽绒服")] == [message.id]
    # Text changed (e.g. erased): the index follows.
    message.text = ""
    session.flush()
    assert search.search_messages(session, "羽绒服") == []
    # Deleting the conversation's index rows (before an erasure deletes the messages).
    message.text = "羽绒服 again"
    session.flush()
    assert search.delete_for_conversations(session, ["cnew"]) == 1
    assert search.search_messages(session, "羽绒服") == []


def test_a_shopper_message_is_searchable_as_soon_as_it_is_stored(session: Session) -> None:
    from bot.services import conversations as conv

    chat = conv.start_session(session=session, visitor_id=None, clock=lambda: AT)
    stored = conv.record_inbound(
        session=session,
        conversation_id=chat.conversation_id,
        client_msg_id="c-1",
        text="我的羽绒外套尺码不对",
        clock=lambda: AT,
    )
    again = conv.record_inbound(  # a repeat is not indexed twice
        session=session,
        conversation_id=chat.conversation_id,
        client_msg_id="c-1",
        text="我的羽绒外套尺码不对",
        clock=lambda: AT,
    )
    assert again.duplicate and again.message.id == stored.message.id
    hits = search.search_messages(session, "羽绒 尺码")
    assert [h.message_id for h in hits] == [stored.message.id]
