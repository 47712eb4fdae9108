"""model lifecycle

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 22:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.models.base

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> bot.models.base.UTCDateTime:
    return bot.models.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "model_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.String(length=100), nullable=False),
        sa.Column("model_path", sa.String(length=500), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("metrics", bot.models.base.JSONType, nullable=True),
        sa.Column("gate", bot.models.base.JSONType, nullable=True),
        sa.Column("baseline_id", sa.Integer(), nullable=True),
        sa.Column("corrections_count", sa.Integer(), nullable=False),
        sa.Column("log_tail", sa.Text(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("finished_at", _utc(), nullable=True),
        sa.Column("activated_at", _utc(), nullable=True),
        sa.Column("retired_at", _utc(), nullable=True),
        sa.CheckConstraint(
            "source IN ('make_train', 'retrain')", name=op.f("ck_model_version_source")
        ),
        sa.CheckConstraint(
            "status IN ('training', 'trained', 'failed', 'gate_passed', 'gate_failed', "
            "'active', 'retired')",
            name=op.f("ck_model_version_status"),
        ),
        sa.ForeignKeyConstraint(
            ["baseline_id"],
            ["model_version.id"],
            name=op.f("fk_model_version_baseline_id_model_version"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_version")),
        sa.UniqueConstraint("model_id", name=op.f("uq_model_version_model_id")),
    )
    with op.batch_alter_table("model_version", schema=None) as batch_op:
        batch_op.create_index(
            "ix_model_version_status_created", ["status", "created_at"], unique=False
        )

    op.create_table(
        "engine_endpoint",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("urls", bot.models.base.JSONType, nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=True),
        sa.Column("model_id", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("message", sa.String(length=500), nullable=False),
        sa.Column("process", bot.models.base.JSONType, nullable=False),
        sa.Column("requested_version_id", sa.Integer(), nullable=True),
        sa.Column("requested_at", _utc(), nullable=True),
        sa.Column("heartbeat_at", _utc(), nullable=True),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.CheckConstraint(
            "state IN ('starting', 'serving', 'switching', 'failed', 'stopped')",
            name=op.f("ck_engine_endpoint_state"),
        ),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_version.id"],
            name=op.f("fk_engine_endpoint_model_version_id_model_version"),
        ),
        sa.ForeignKeyConstraint(
            ["requested_version_id"],
            ["model_version.id"],
            name=op.f("fk_engine_endpoint_requested_version_id_model_version"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_engine_endpoint")),
    )


def downgrade() -> None:
    op.drop_table("engine_endpoint")
    with op.batch_alter_table("model_version", schema=None) as batch_op:
        batch_op.drop_index("ix_model_version_status_created")
    op.drop_table("model_version")
