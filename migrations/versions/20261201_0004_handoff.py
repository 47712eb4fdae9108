"""handoff queue tickets and satisfaction

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 19:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.models.base

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> bot.models.base.UTCDateTime:
    return bot.models.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "handoff",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("vip", sa.Boolean(), nullable=False),
        sa.Column("requested_at", _utc(), nullable=False),
        sa.Column("sort_at", _utc(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("assigned_at", _utc(), nullable=True),
        sa.Column("ended_at", _utc(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("disposition", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["staff.id"], name=op.f("fk_handoff_agent_id_staff")),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversation.id"],
            name=op.f("fk_handoff_conversation_id_conversation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoff")),
    )
    with op.batch_alter_table("handoff", schema=None) as batch_op:
        batch_op.create_index("ix_handoff_state_sort_at", ["state", "sort_at"], unique=False)
        batch_op.create_index("ix_handoff_conversation_id", ["conversation_id", "id"], unique=False)
        batch_op.create_index("ix_handoff_agent_state", ["agent_id", "state"], unique=False)
        batch_op.create_index("ix_handoff_ended_at", ["ended_at"], unique=False)

    op.create_table(
        "agent_status",
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_agent_status_staff_id_staff")
        ),
        sa.PrimaryKeyConstraint("staff_id", name=op.f("pk_agent_status")),
    )
    with op.batch_alter_table("agent_status", schema=None) as batch_op:
        batch_op.create_index("ix_agent_status_status", ["status"], unique=False)

    op.create_table(
        "agent_message",
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"], ["message.id"], name=op.f("fk_agent_message_message_id_message")
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_agent_message_staff_id_staff")
        ),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_agent_message")),
    )
    with op.batch_alter_table("agent_message", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_agent_message_staff_id"), ["staff_id"], unique=False)

    op.create_table(
        "ticket",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("callback_phone", sa.String(length=32), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.Column("closed_at", _utc(), nullable=True),
        sa.Column("closed_by", sa.Integer(), nullable=True),
        sa.Column("resolution", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["closed_by"], ["staff.id"], name=op.f("fk_ticket_closed_by_staff")
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversation.id"],
            name=op.f("fk_ticket_conversation_id_conversation"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_ticket_customer_id_customer")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket")),
    )
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.create_index("ix_ticket_state_created_at", ["state", "created_at"], unique=False)
        batch_op.create_index("ix_ticket_conversation_id", ["conversation_id", "id"], unique=False)

    op.create_table(
        "csat",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=32), nullable=False),
        sa.Column("handoff_id", sa.Integer(), nullable=True),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("asked_at", _utc(), nullable=False),
        sa.Column("answered_at", _utc(), nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["staff.id"], name=op.f("fk_csat_agent_id_staff")),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversation.id"],
            name=op.f("fk_csat_conversation_id_conversation"),
        ),
        sa.ForeignKeyConstraint(
            ["handoff_id"], ["handoff.id"], name=op.f("fk_csat_handoff_id_handoff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_csat")),
    )
    with op.batch_alter_table("csat", schema=None) as batch_op:
        batch_op.create_index("ix_csat_conversation_id", ["conversation_id", "id"], unique=False)
        batch_op.create_index("ix_csat_agent_id", ["agent_id", "asked_at"], unique=False)

    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.create_index(
            "ix_conversation_state_last_message_at", ["state", "last_message_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.drop_index("ix_conversation_state_last_message_at")
    for table, indexes in (
        ("csat", ("ix_csat_agent_id", "ix_csat_conversation_id")),
        ("ticket", ("ix_ticket_conversation_id", "ix_ticket_state_created_at")),
        ("agent_message", ("ix_agent_message_staff_id",)),
        ("agent_status", ("ix_agent_status_status",)),
        (
            "handoff",
            (
                "ix_handoff_ended_at",
                "ix_handoff_agent_state",
                "ix_handoff_conversation_id",
                "ix_handoff_state_sort_at",
            ),
        ),
    ):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for index in indexes:
                batch_op.drop_index(index)
        op.drop_table(table)
