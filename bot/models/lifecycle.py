"""Model lifecycle tables: trained model versions, their gate results, and which one serves.

``model_version`` is one trained model and what happened to it: trained (by ``make train`` or
a retrain with the reviewed corrections), measured on the held-out set, gated against the
model it would replace, activated, retired. ``engine_endpoint`` is a single row written by
the engine manager (``bot.engine_manager``): the Rasa URL(s) serving now and a generation
counter that grows with every switch, so API workers follow a swap; it also carries the
pending activation request the manager polls for.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.models.base import Base, JSONType, UTCDateTime

MODEL_SOURCES = ("make_train", "retrain")
MODEL_STATUSES = (
    "training",
    "trained",
    "failed",
    "gate_passed",
    "gate_failed",
    "active",
    "retired",
)
ENGINE_STATES = ("starting", "serving", "switching", "failed", "stopped")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class ModelVersion(Base):
    """One trained model.

    ``metrics`` is per language, from ``scripts/eval_nlu.py`` on the held-out set:
    ``{"zh": {"accuracy": …, "macro_f1": …, "oos_rejection": …}, …}``. ``gate`` is the
    verdict against ``baseline_id`` (the active version when it was gated):
    ``{"passed": bool, "tolerance": float, "reasons": [...], "eval_problems": [...]}``.
    ``log_tail`` keeps the last lines of the training / evaluation / activation output.
    """

    __tablename__ = "model_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The model's name, e.g. "kefu-032bdf7ebb35" (make train) or "kefu-r7-20261201T2240".
    model_id: Mapped[str] = mapped_column(String(100), unique=True)
    # Absolute, or relative to the project root.
    model_path: Mapped[str] = mapped_column(String(500), default="")
    source: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    gate: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    baseline_id: Mapped[int | None] = mapped_column(ForeignKey("model_version.id"))
    corrections_count: Mapped[int] = mapped_column(default=0)
    log_tail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint(_in("source", MODEL_SOURCES), name="source"),
        CheckConstraint(_in("status", MODEL_STATUSES), name="status"),
        Index("ix_model_version_status_created", "status", "created_at"),
    )


class EngineEndpoint(Base):
    """Which Rasa server(s) serve turns now (one row, ``id = 1``).

    The engine manager publishes ``urls`` with ``generation + 1`` after a new Rasa answered
    its readiness route and a warm-up turn; API workers poll the row and switch new turns
    when the generation grows and ``heartbeat_at`` is fresh (a row left by a manager that is
    no longer running is ignored). ``requested_version_id`` is an activation the console
    asked for and the manager has not finished yet.
    """

    __tablename__ = "engine_endpoint"

    id: Mapped[int] = mapped_column(primary_key=True)
    urls: Mapped[list[str]] = mapped_column(JSONType, default=list)
    generation: Mapped[int] = mapped_column(default=0)
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_version.id"))
    model_id: Mapped[str] = mapped_column(String(100), default="")
    # The manager's own state and last word ("serving", "switching", "failed: …").
    state: Mapped[str] = mapped_column(String(16), default="starting")
    message: Mapped[str] = mapped_column(String(500), default="")
    # {"manager": pid, "rasa": pid, "port": port} of the serving process.
    process: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    requested_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_version.id"))
    requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (CheckConstraint(_in("state", ENGINE_STATES), name="state"),)
