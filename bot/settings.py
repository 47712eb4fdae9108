"""One settings object for every process, read from ``KEFU_*`` environment variables.

Defaults run the embedded single-machine setup: SQLite under ``var/``, one Rasa server and
one action server on the loopback interface. Secrets that are not given are generated on
first run and kept in ``var/secrets.json``; a production configuration refuses that.
"""

from __future__ import annotations

import json
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_SECRET_NAMES = ("secret_key", "store_token_secret", "store_api_key")


class ConfigurationError(RuntimeError):
    """The configuration cannot run safely (e.g. production without real secrets)."""


class Settings(BaseSettings):
    """Everything configurable about Kefu. Environment variables are ``KEFU_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="KEFU_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    var_dir: Path = PROJECT_ROOT / "var"
    database_url: str = ""

    # Signing keys. Empty means "generate on first run" (refused in production).
    secret_key: str = ""
    store_token_secret: str = ""
    # The store's systems send it as ``Authorization: Bearer <key>`` to /api/store/*.
    store_api_key: str = ""

    # The public API.
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_url: str = ""
    allowed_origins: list[str] = Field(default_factory=list)

    # The engine: one or more Rasa servers (a conversation always goes to the same one).
    rasa_urls: list[str] = Field(default_factory=lambda: ["http://127.0.0.1:5005"])
    action_server_url: str = "http://127.0.0.1:5055"
    turn_deadline_seconds: float = 5.0
    warm_up: bool = True
    # A conversation the bot alone serves ends after this long without a message (the next
    # message starts a new one); a conversation with a person is ended by the person.
    conversation_idle_minutes: int = 30

    # Model lifecycle (bot/services/lifecycle.py, bot/engine_manager.py). Relative paths are
    # relative to the project root. The gate passes only if no language's held-out metric
    # drops by more than ``gate_tolerance`` (0.0: no regression at all) and the eval's own
    # targets still hold.
    engine_rasa_bin: Path = Path(".venv-engine/bin/rasa")
    engine_python_bin: Path = Path(".venv-engine/bin/python")
    models_dir: Path = Path("models")
    gate_tolerance: float = 0.0
    retrain_timeout_seconds: float = 3600.0
    # The engine manager alternates its Rasa between these ports on 127.0.0.1.
    engine_ports: list[int] = Field(default_factory=lambda: [5005, 5006])
    engine_start_timeout_seconds: float = 240.0
    # After a switch the old Rasa keeps running this long, so turns in flight finish.
    engine_grace_seconds: float = 10.0
    # How often the manager looks for an activation request and API workers for a switch.
    engine_poll_seconds: float = 1.0
    # API workers follow the engine_endpoint record (when its manager is alive).
    follow_engine_endpoint: bool = True

    # Human handoff (bot/services/handoff.py). Service hours are in the store's time zone,
    # "HH:MM-HH:MM" (an end before the start runs past midnight).
    service_hours: str = "09:00-21:00"
    agent_capacity: int = 3  # conversations at once, per agent, unless the agent sets it
    handoff_auto_assign: bool = True  # else agents claim from the queue
    vip_levels: list[str] = Field(default_factory=lambda: ["vip"])
    vip_head_start_seconds: int = 300  # a VIP queues as if they had asked this much earlier
    handoff_default_handle_seconds: int = 300  # the wait estimate before any history
    # An agent whose last console socket closed is set offline after this (0: never).
    agent_offline_grace_seconds: float = 60.0
    # Supervision (bot/services/supervision.py): a bot conversation is flagged "low
    # confidence" when one of its last ``supervision_recent_turns`` shopper turns was
    # understood with a confidence under this (the NLU fallback itself is at 0.75).
    supervision_low_confidence: float = 0.85
    supervision_recent_turns: int = 3

    # Privacy: the version of the marketing-consent text shoppers and agents answer.
    consent_version: str = "2026-12"
    # Transcripts of closed conversations older than this are removed (`bot.cli retention`);
    # 0 keeps them forever.
    retention_days: int = Field(default=365, ge=0)
    # A shopper's download link for their own data export is valid this long.
    export_link_minutes: int = Field(default=15, ge=1, le=1440)
    max_message_chars: int = 2000
    max_queued_turns: int = 20
    visitor_token_max_age_days: int = 365
    store_timezone: str = "Asia/Shanghai"
    log_level: str = "INFO"

    # Service journeys: the store's shipping, return and compensation policies.
    shipping_fee_fen: int = 1000
    free_shipping_threshold_fen: int = 9900
    shipping_carriers: list[str] = Field(default_factory=lambda: ["sf", "zto", "yto", "jd", "ems"])
    # Days from shipping to delivery, by region (labels in bot/labels.py).
    delivery_days_by_region: dict[str, str] = Field(
        default_factory=lambda: {
            "east": "1-2",
            "north": "2-3",
            "south": "2-3",
            "central": "2-3",
            "southwest": "3-4",
            "northeast": "3-5",
            "northwest": "4-6",
        }
    )
    return_window_days: int = 7
    quality_return_window_days: int = 15
    no_reason_return_excluded_categories: list[str] = Field(default_factory=lambda: ["underwear"])
    refund_business_days: int = 3
    # The delay script's "no" branch: a coupon instead of cancelling.
    delay_coupon_fen: int = 2000
    delay_coupon_min_spend_fen: int = 0
    delay_coupon_valid_days: int = 30
    points_per_yuan: int = 100

    # The demo store at / (a stand-in for a real shop, with a log-in switch for testers).
    # Unset: on, except in production.
    demo_store: bool | None = None

    # Shared state between API workers (rate limits, live events); empty = in-process.
    redis_url: str = ""

    # Limits of the public chat. Each is refused with 429 / close code 4429 and a message.
    limit_messages_per_minute: int = 20  # per conversation
    limit_new_conversations_per_visitor_hour: int = 10
    limit_new_conversations_per_ip_hour: int = 60
    limit_sockets_per_ip: int = 20  # open at once

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.var_dir / 'kefu.db'}"
        if not self.public_url:
            self.public_url = f"http://{self.api_host}:{self.api_port}"
        if self.demo_store is None:
            self.demo_store = self.environment != "production"
        if not self.allowed_origins:
            self.allowed_origins = [self.public_url, f"http://localhost:{self.api_port}"]
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def load_secrets(self, *, create: bool = False) -> Settings:
        """Fill missing secrets from ``var/secrets.json``, generating it if ``create``.

        Production never generates: a missing secret there is a configuration error.
        """
        missing = [name for name in _SECRET_NAMES if not getattr(self, name)]
        if not missing:
            return self
        if self.environment == "production":
            names = ", ".join(f"KEFU_{name.upper()}" for name in missing)
            raise ConfigurationError(f"production needs {names} set explicitly")
        path = self.var_dir / "secrets.json"
        stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        if any(name not in stored for name in missing):
            if not create:
                raise ConfigurationError(f"no secrets yet: run `make run` or `make init` ({path})")
            for name in _SECRET_NAMES:
                stored.setdefault(name, secrets.token_urlsafe(32))
            path.parent.mkdir(parents=True, exist_ok=True)
            # Written aside and renamed: another process never reads a half-written file.
            partial = path.with_name(f".{path.name}.{os.getpid()}")
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(stored, fh)
            os.replace(partial, path)
        for name in missing:
            setattr(self, name, stored[name])
        return self


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, with secrets loaded (generated on first use outside
    production)."""
    return Settings().load_secrets(create=True)
