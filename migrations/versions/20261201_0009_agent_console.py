"""agent console

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 22:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.models.base

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> bot.models.base.UTCDateTime:
    return bot.models.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "canned_response",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shortcode", sa.String(length=32), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("placeholders", bot.models.base.JSONType, nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(
            ["updated_by"], ["staff.id"], name=op.f("fk_canned_response_updated_by_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canned_response")),
        sa.UniqueConstraint("shortcode", "language", name=op.f("uq_canned_response_shortcode")),
    )

    op.create_table(
        "agent_note",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=32), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversation.id"],
            name=op.f("fk_agent_note_conversation_id_conversation"),
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_agent_note_staff_id_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_note")),
    )
    with op.batch_alter_table("agent_note", schema=None) as batch_op:
        batch_op.create_index(
            "ix_agent_note_conversation_id", ["conversation_id", "id"], unique=False
        )

    op.create_table(
        "conversation_tag",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=32), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversation.id"],
            name=op.f("fk_conversation_tag_conversation_id_conversation"),
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_conversation_tag_staff_id_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_tag")),
        sa.UniqueConstraint(
            "conversation_id", "tag", name=op.f("uq_conversation_tag_conversation_id")
        ),
    )
    with op.batch_alter_table("conversation_tag", schema=None) as batch_op:
        batch_op.create_index("ix_conversation_tag_tag", ["tag", "conversation_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("conversation_tag", schema=None) as batch_op:
        batch_op.drop_index("ix_conversation_tag_tag")
    op.drop_table("conversation_tag")
    with op.batch_alter_table("agent_note", schema=None) as batch_op:
        batch_op.drop_index("ix_agent_note_conversation_id")
    op.drop_table("agent_note")
    op.drop_table("canned_response")
