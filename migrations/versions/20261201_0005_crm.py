"""customer profile segments and recommendations

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 20:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.models.base

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> bot.models.base.UTCDateTime:
    return bot.models.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "customer_tag",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_customer_tag_customer_id_customer")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_tag")),
        sa.UniqueConstraint("customer_id", "tag", name=op.f("uq_customer_tag_customer_id")),
    )
    op.create_index("ix_customer_tag_tag", "customer_tag", ["tag", "customer_id"])

    op.create_table(
        "customer_rfm",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("last_order_at", _utc(), nullable=False),
        sa.Column("frequency", sa.Integer(), nullable=False),
        sa.Column("monetary_fen", sa.BigInteger(), nullable=False),
        sa.Column("r_score", sa.Integer(), nullable=False),
        sa.Column("f_score", sa.Integer(), nullable=False),
        sa.Column("m_score", sa.Integer(), nullable=False),
        sa.Column("computed_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_customer_rfm_customer_id_customer")
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_rfm")),
    )
    op.create_index("ix_customer_rfm_scores", "customer_rfm", ["r_score", "f_score", "m_score"])

    op.create_table(
        "product_association",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("antecedent_id", sa.Integer(), nullable=False),
        sa.Column("consequent_id", sa.Integer(), nullable=False),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column("support", sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("lift", sa.Float(), nullable=False),
        sa.Column("computed_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(
            ["antecedent_id"],
            ["product.id"],
            name=op.f("fk_product_association_antecedent_id_product"),
        ),
        sa.ForeignKeyConstraint(
            ["consequent_id"],
            ["product.id"],
            name=op.f("fk_product_association_consequent_id_product"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product_association")),
        sa.UniqueConstraint(
            "antecedent_id",
            "consequent_id",
            name=op.f("uq_product_association_antecedent_id"),
        ),
    )
    op.create_index(
        "ix_product_association_antecedent_lift", "product_association", ["antecedent_id", "lift"]
    )

    op.create_table(
        "product_popularity",
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column("category_rank", sa.Integer(), nullable=False),
        sa.Column("computed_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"], ["product.id"], name=op.f("fk_product_popularity_product_id_product")
        ),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_product_popularity")),
    )
    op.create_index(
        "ix_product_popularity_category_rank", "product_popularity", ["category", "category_rank"]
    )
    op.create_index("ix_product_popularity_customers", "product_popularity", ["customers"])

    op.create_table(
        "segment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("rule", bot.models.base.JSONType, nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["staff.id"], name=op.f("fk_segment_created_by_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment")),
        sa.UniqueConstraint("name", name=op.f("uq_segment_name")),
    )
    op.create_index("ix_segment_created_at", "segment", ["created_at"])

    # Segment conditions on purchases look orders up by customer, items by order, variants by
    # colour; conversations by customer and messages by conversation already have indexes.
    op.create_index("ix_variant_colour", "variant", ["colour", "product_id"])


def downgrade() -> None:
    op.drop_index("ix_variant_colour", table_name="variant")
    for table in (
        "segment",
        "product_popularity",
        "product_association",
        "customer_rfm",
        "customer_tag",
    ):
        op.drop_table(table)
