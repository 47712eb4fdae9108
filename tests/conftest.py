"""Shared fixtures.

- ``db_engine``: a migrated (``alembic upgrade head``) and seeded database, once per test
  session per backend — SQLite and PostgreSQL; tests that use it run on both.
- ``session``: a session inside a transaction that is rolled back after the test
  (SAVEPOINTs, so service code may commit).
- ``app_db``: a seeded SQLite database wired in as the process-wide default, for code that
  opens its own sessions (actions, the API).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from bot import db as bot_db
from bot import settings as bot_settings
from bot.cli import migrate
from bot.db import make_engine
from bot.seed import seed_demo_store
from bot.services.recommendations import recompute_rules
from tests.support.postgres import TempPostgres, create_database
from tests.support.redis import TempRedis

FIXED_NOW = datetime(2026, 11, 20, 6, 0, tzinfo=timezone.utc)

# Tests never touch the developer's var/ or secrets.
os.environ.setdefault("KEFU_ENVIRONMENT", "test")
os.environ.setdefault("KEFU_SECRET_KEY", "test-secret-key")
os.environ.setdefault("KEFU_STORE_TOKEN_SECRET", "test-store-secret")
os.environ.setdefault("KEFU_STORE_API_KEY", "test-store-api-key")


def fixed_clock() -> datetime:
    return FIXED_NOW


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    url = os.environ.get("KEFU_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    try:
        server = TempPostgres().start()
    except (RuntimeError, OSError) as exc:
        if os.environ.get("KEFU_REQUIRE_POSTGRES"):
            raise
        pytest.skip(f"PostgreSQL not available: {exc}")
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A throw-away redis-server (skipped where none is installed, unless
    ``KEFU_REQUIRE_REDIS`` says it must run, as CI does)."""
    try:
        server = TempRedis().start()
    except (RuntimeError, OSError) as exc:
        if os.environ.get("KEFU_REQUIRE_REDIS"):
            raise
        pytest.skip(f"redis-server not available: {exc}")
    yield server.url
    server.stop()


def _prepared(url: str) -> Engine:
    migrate(url)
    engine = make_engine(url)
    with Session(engine) as session:
        seed_demo_store(session=session, clock=fixed_clock)
        recompute_rules(session=session, clock=fixed_clock)  # as `bot.cli seed` does
        session.commit()
    return engine


@pytest.fixture(
    scope="session",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def db_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'kefu.db'}"
    else:
        url = create_database(request.getfixturevalue("postgres_server"), "kefu_unit")
    engine = _prepared(url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(db_engine: Engine) -> Iterator[Session]:
    connection = db_engine.connect()
    transaction = connection.begin()
    session = Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    try:
        yield session
    finally:
        session.close()
        transaction.rollback()
        connection.close()


def _clear_caches() -> None:
    bot_settings.get_settings.cache_clear()
    bot_db.get_engine.cache_clear()
    bot_db.get_sessionmaker.cache_clear()


@pytest.fixture(scope="session")
def app_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A seeded SQLite database used through bot.db's process-wide session factory."""
    directory: Path = tmp_path_factory.mktemp("appdb")
    url = f"sqlite:///{directory / 'kefu.db'}"
    _prepared(url).dispose()
    saved = {k: os.environ.get(k) for k in ("KEFU_DATABASE_URL", "KEFU_VAR_DIR")}
    os.environ["KEFU_DATABASE_URL"] = url
    os.environ["KEFU_VAR_DIR"] = str(directory)
    _clear_caches()
    yield url
    bot_db.get_engine().dispose()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    _clear_caches()
