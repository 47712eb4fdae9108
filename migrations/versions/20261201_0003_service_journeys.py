"""service journeys outcomes and requests

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 19:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.models.base

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = bot.models.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("product", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("customised", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("order", schema=None) as batch_op:
        batch_op.add_column(sa.Column("note", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("delay_accepted_at", UTC, nullable=True))
        batch_op.add_column(sa.Column("cancelled_at", UTC, nullable=True))

    op.create_table(
        "outcome",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("conversation_id", sa.String(length=64), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("detail", bot.models.base.JSONType, nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_outcome_customer_id_customer")
        ),
        sa.ForeignKeyConstraint(["order_id"], ["order.id"], name=op.f("fk_outcome_order_id_order")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outcome")),
        sa.UniqueConstraint("message_id", "kind", name="uq_outcome_message_id_kind"),
    )
    with op.batch_alter_table("outcome", schema=None) as batch_op:
        batch_op.create_index("ix_outcome_customer_created", ["customer_id", "created_at"])
        batch_op.create_index("ix_outcome_kind_created", ["kind", "created_at"])
        batch_op.create_index(batch_op.f("ix_outcome_order_id"), ["order_id"])

    op.create_table(
        "service_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=24), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("order_item_id", sa.Integer(), nullable=False),
        sa.Column("exchange_variant_id", sa.Integer(), nullable=True),
        sa.Column("refund_fen", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
            name=op.f("fk_service_request_customer_id_customer"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["order.id"], name=op.f("fk_service_request_order_id_order")
        ),
        sa.ForeignKeyConstraint(
            ["order_item_id"],
            ["order_item.id"],
            name=op.f("fk_service_request_order_item_id_order_item"),
        ),
        sa.ForeignKeyConstraint(
            ["exchange_variant_id"],
            ["variant.id"],
            name=op.f("fk_service_request_exchange_variant_id_variant"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_request")),
        sa.UniqueConstraint("number", name=op.f("uq_service_request_number")),
    )
    with op.batch_alter_table("service_request", schema=None) as batch_op:
        batch_op.create_index("ix_service_request_customer_created", ["customer_id", "created_at"])
        batch_op.create_index(batch_op.f("ix_service_request_order_id"), ["order_id"])
        batch_op.create_index(batch_op.f("ix_service_request_order_item_id"), ["order_item_id"])

    op.create_table(
        "coupon",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.Column("min_spend_fen", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("expires_at", UTC, nullable=False),
        sa.Column("used_at", UTC, nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_coupon_customer_id_customer")
        ),
        sa.ForeignKeyConstraint(["order_id"], ["order.id"], name=op.f("fk_coupon_order_id_order")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon")),
        sa.UniqueConstraint("code", name=op.f("uq_coupon_code")),
    )
    with op.batch_alter_table("coupon", schema=None) as batch_op:
        batch_op.create_index("ix_coupon_customer_expires", ["customer_id", "expires_at"])

    op.create_table(
        "promotion",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("title_zh", sa.String(length=200), nullable=False),
        sa.Column("title_en", sa.String(length=200), nullable=False),
        sa.Column("min_spend_fen", sa.Integer(), nullable=False),
        sa.Column("discount_fen", sa.Integer(), nullable=False),
        sa.Column("member_level", sa.String(length=16), nullable=True),
        sa.Column("starts_at", UTC, nullable=False),
        sa.Column("ends_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotion")),
        sa.UniqueConstraint("code", name=op.f("uq_promotion_code")),
    )
    with op.batch_alter_table("promotion", schema=None) as batch_op:
        batch_op.create_index("ix_promotion_period", ["starts_at", "ends_at"])


def downgrade() -> None:
    op.drop_table("promotion")
    op.drop_table("coupon")
    op.drop_table("service_request")
    op.drop_table("outcome")
    with op.batch_alter_table("order", schema=None) as batch_op:
        batch_op.drop_column("cancelled_at")
        batch_op.drop_column("delay_accepted_at")
        batch_op.drop_column("note")
    with op.batch_alter_table("product", schema=None) as batch_op:
        batch_op.drop_column("customised")
