"""analytics indexes

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 22:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, index, columns): what the analytics dashboard reads (bot/services/analytics.py).
# Conversations by start time use ix_review_conversation_created (created_at, id; 0010).
INDEXES: tuple[tuple[str, str, list[str]], ...] = (
    (
        "message",
        "ix_message_role_created_at",
        ["role", "created_at", "intent", "confidence"],
    ),
    ("message", "ix_message_conversation_role", ["conversation_id", "role", "created_at"]),
    ("handoff", "ix_handoff_assigned_at", ["assigned_at"]),
    ("csat", "ix_csat_asked_at", ["asked_at"]),
)


def upgrade() -> None:
    for table, name, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for table, name, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
