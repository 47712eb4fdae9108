"""ops review and search

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 22:40:00

Turn labels, review status per conversation, the message search index (bot.search) and the
indexes the review list reads. On SQLite the index is an FTS5 table over message_search,
kept in step by triggers; on PostgreSQL a tsvector column under a GIN index.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import bot.models.base

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# ``ascii``: every non-ASCII character belongs to a word, so only the spaces bot.search puts
# between words separate them (the same words PostgreSQL's array_to_tsvector gets).
FTS_SQLITE = [
    "CREATE VIRTUAL TABLE message_fts USING fts5("
    "terms, content='message_search', content_rowid='message_id', tokenize='ascii')",
    "CREATE TRIGGER message_search_ai AFTER INSERT ON message_search BEGIN "
    "INSERT INTO message_fts(rowid, terms) VALUES (new.message_id, new.terms); END",
    "CREATE TRIGGER message_search_ad AFTER DELETE ON message_search BEGIN "
    "INSERT INTO message_fts(message_fts, rowid, terms) "
    "VALUES ('delete', old.message_id, old.terms); END",
    "CREATE TRIGGER message_search_au AFTER UPDATE ON message_search BEGIN "
    "INSERT INTO message_fts(message_fts, rowid, terms) "
    "VALUES ('delete', old.message_id, old.terms); "
    "INSERT INTO message_fts(rowid, terms) VALUES (new.message_id, new.terms); END",
]


def _utc() -> bot.models.base.UTCDateTime:
    return bot.models.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.create_table(
        "turn_label",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("intent", sa.String(length=64), nullable=False),
        sa.Column("entities", bot.models.base.JSONType, nullable=False),
        sa.Column("reviewer_id", sa.Integer(), nullable=True),
        sa.Column("labelled_at", _utc(), nullable=False),
        sa.CheckConstraint(
            "status IN ('correct', 'relabelled')", name=op.f("ck_turn_label_status")
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversation.id"],
            name=op.f("fk_turn_label_conversation_id_conversation"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["message.id"],
            name=op.f("fk_turn_label_message_id_message"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_id"], ["staff.id"], name=op.f("fk_turn_label_reviewer_id_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_turn_label")),
        sa.UniqueConstraint("message_id", name=op.f("uq_turn_label_message_id")),
    )
    with op.batch_alter_table("turn_label", schema=None) as batch_op:
        batch_op.create_index(
            "ix_turn_label_conversation_id", ["conversation_id", "message_id"], unique=False
        )
        batch_op.create_index("ix_turn_label_labelled_at", ["labelled_at"], unique=False)

    op.create_table(
        "conversation_review",
        sa.Column("conversation_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reviewer_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.CheckConstraint(
            "status IN ('unreviewed', 'reviewed', 'needs_attention')",
            name=op.f("ck_conversation_review_status"),
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversation.id"],
            name=op.f("fk_conversation_review_conversation_id_conversation"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_id"], ["staff.id"], name=op.f("fk_conversation_review_reviewer_id_staff")
        ),
        sa.PrimaryKeyConstraint("conversation_id", name=op.f("pk_conversation_review")),
    )
    with op.batch_alter_table("conversation_review", schema=None) as batch_op:
        batch_op.create_index(
            "ix_conversation_review_status", ["status", "conversation_id"], unique=False
        )

    op.create_table(
        "message_search",
        sa.Column("message_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("conversation_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column(
            "terms", sa.Text().with_variant(postgresql.TSVECTOR(), "postgresql"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversation.id"],
            name=op.f("fk_message_search_conversation_id_conversation"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["message.id"],
            name=op.f("fk_message_search_message_id_message"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_message_search")),
    )
    with op.batch_alter_table("message_search", schema=None) as batch_op:
        batch_op.create_index(
            "ix_message_search_conversation_id", ["conversation_id", "message_id"], unique=False
        )
    if sqlite:
        for statement in FTS_SQLITE:
            op.execute(statement)
    else:
        op.create_index(
            "ix_message_search_terms", "message_search", ["terms"], postgresql_using="gin"
        )

    op.create_index(
        "ix_review_conversation_created", "conversation", ["created_at", "id"], unique=False
    )
    op.create_index(
        "ix_review_message_intent", "message", ["intent", "conversation_id"], unique=False
    )
    op.create_index(
        "ix_review_message_confidence", "message", ["confidence", "conversation_id"], unique=False
    )
    op.create_index(
        "ix_review_outcome_conversation", "outcome", ["kind", "conversation_id"], unique=False
    )


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.drop_index("ix_review_outcome_conversation", table_name="outcome")
    op.drop_index("ix_review_message_confidence", table_name="message")
    op.drop_index("ix_review_message_intent", table_name="message")
    op.drop_index("ix_review_conversation_created", table_name="conversation")
    if sqlite:
        for name in ("message_search_au", "message_search_ad", "message_search_ai"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS message_fts")
    else:
        op.drop_index("ix_message_search_terms", table_name="message_search")
    with op.batch_alter_table("message_search", schema=None) as batch_op:
        batch_op.drop_index("ix_message_search_conversation_id")
    op.drop_table("message_search")
    with op.batch_alter_table("conversation_review", schema=None) as batch_op:
        batch_op.drop_index("ix_conversation_review_status")
    op.drop_table("conversation_review")
    with op.batch_alter_table("turn_label", schema=None) as batch_op:
        batch_op.drop_index("ix_turn_label_labelled_at")
        batch_op.drop_index("ix_turn_label_conversation_id")
    op.drop_table("turn_label")
