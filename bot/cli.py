"""Kefu's command line: ``python -m bot.cli <command>`` (the Makefile calls these)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.settings import PROJECT_ROOT, get_settings


def migrate(url: str | None = None) -> None:
    """Bring the database to the newest schema (``alembic upgrade head``)."""
    from alembic import command
    from alembic.config import Config

    settings = get_settings()
    if settings.is_sqlite:
        Path(settings.var_dir).mkdir(parents=True, exist_ok=True)
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    cfg.attributes["configure_logger"] = False
    if url:
        cfg.attributes["url"] = url
    command.upgrade(cfg, "head")


def seed() -> None:
    """Load the demo store unless the database already has customers."""
    from sqlalchemy import func, select

    from bot.db import session_scope
    from bot.models import Customer
    from bot.seed import DEMO_CUSTOMERS, seed_demo_store

    with session_scope() as session:
        if session.scalar(select(func.count()).select_from(Customer)):
            print("demo store already seeded")
            return
        report = seed_demo_store(session=session)
    print(f"seeded: {report}")
    print("demo shoppers:", ", ".join(f"{ext} {name}" for ext, name, *_ in DEMO_CUSTOMERS))


def customer_token(external_id: str) -> None:
    """Print a store login token for a customer, as a store backend would issue it."""
    from bot.identity import issue_customer_token

    print(issue_customer_token(external_id, key=get_settings().store_token_secret))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kefu")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("init", help="generate secrets (first run) and migrate")
    sub.add_parser("migrate", help="alembic upgrade head")
    sub.add_parser("seed", help="load the demo store into an empty database")
    tok = sub.add_parser("customer-token", help="issue a store login token for a customer")
    tok.add_argument("external_id")
    args = parser.parse_args(argv)
    if args.command in ("init", "migrate"):
        migrate()
    elif args.command == "seed":
        seed()
    elif args.command == "customer-token":
        customer_token(args.external_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
