"""The FastAPI application: Kefu's only public surface.

``uvicorn --factory api.main:create_app`` serves it; tests call ``create_app(settings)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from api import errors, logs
from api.chat import ChatService
from api.engine import EngineClient, EngineError, follow_endpoint, read_endpoint
from api.events import make_hub
from api.handoff import HandoffService
from api.ratelimit import ChatLimits, make_limiter
from api.routes import (
    agent,
    agent_console,
    analytics,
    chat,
    console,
    customers,
    health,
    ingest,
    models,
    privacy,
    review,
    segments,
    store,
    supervisor,
    widget,
)
from api.turns import TurnService
from bot.settings import Settings, get_settings

logger = logging.getLogger("kefu.api")

MAX_BODY_BYTES = 64 * 1024
STATIC_DIR = Path(__file__).resolve().parent / "static"
CONSOLE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'"
)
WARM_UP_TEXTS = ("你好", "hello")


async def warm_up(app: FastAPI, *, attempts: int = 600, interval: float = 1.0) -> None:
    """Wait until every Rasa server is ready, send each one a first message (the first
    real message must not pay the model's cold start), then resume unfinished turns."""
    state = app.state
    engine: EngineClient = state.engine
    for _ in range(attempts):
        if all((await engine.ready()).values()):
            break
        await asyncio.sleep(interval)
    else:
        logger.error("engine not ready; giving up warm-up")
        return
    if state.settings.warm_up:
        for url in engine.urls:
            for text in WARM_UP_TEXTS:
                # A sender id that hashes to this server, used only for warming.
                sender = next(
                    s
                    for s in (f"warmup-{secrets.token_hex(6)}" for _ in range(10_000))
                    if engine.url_for(s) == url
                )
                with contextlib.suppress(EngineError):
                    await engine.turn(sender, secrets.token_hex(16), text, {"warmup": True})
    recovered = await state.turns.recover_pending()
    state.warmed.set()
    logger.info("ready", extra={"url": state.settings.public_url, "recovered_turns": recovered})
    print(f"\n  Kefu is ready: {state.settings.public_url}/\n", flush=True)


def create_app(
    settings: Settings | None = None, *, engine_transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """The application. ``engine_transport`` replaces the HTTP transport to Rasa in unit
    tests; the shipped path always talks to real Rasa servers."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        logs.configure(settings.log_level)
        engine = EngineClient(
            settings.rasa_urls, deadline=settings.turn_deadline_seconds, transport=engine_transport
        )
        hub = make_hub(settings)
        await hub.start()
        handoff = HandoffService(settings=settings, hub=hub)
        turns = TurnService(
            engine=engine, hub=hub, max_waiting=settings.max_queued_turns, handoff=handoff
        )
        app.state.handoff = handoff
        app.state.settings = settings
        app.state.engine = engine
        app.state.hub = hub
        app.state.turns = turns
        limiter = make_limiter(settings)
        app.state.chat = ChatService(
            settings=settings, turns=turns, limits=ChatLimits(limiter, settings)
        )
        app.state.warmed = asyncio.Event()
        warm_task = asyncio.create_task(warm_up(app))
        # Follow the engine manager's swaps (bot/engine_manager.py, engine_endpoint row).
        follow_task = (
            asyncio.create_task(
                follow_endpoint(
                    engine, lambda: read_endpoint(settings), interval=settings.engine_poll_seconds
                )
            )
            if settings.follow_engine_endpoint and engine_transport is None
            else None
        )
        try:
            yield
        finally:
            warm_task.cancel()
            if follow_task is not None:
                follow_task.cancel()
            await turns.queue.drain_all()
            await handoff.aclose()
            await engine.aclose()
            await hub.aclose()
            await limiter.aclose()

    app = FastAPI(title="Kefu", version="0.1.0", lifespan=lifespan)
    errors.install(app)
    app.include_router(chat.router)
    agent.install(app)
    app.include_router(customers.router)
    app.include_router(health.router)
    app.include_router(widget.router)
    app.include_router(store.router)
    app.include_router(ingest.router)
    app.include_router(segments.router)
    console.install(app)
    privacy.install(app)
    agent_console.install(app)
    supervisor.install(app)
    review.install(app)
    analytics.install(app)
    models.install(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        path = request.url.path
        if path.startswith("/console"):
            response.headers["Content-Security-Policy"] = CONSOLE_CSP
            response.headers["Cache-Control"] = "no-store"
        elif path.startswith("/static/"):
            # Vendored files carry their version in the name; the rest revalidate.
            versioned = "/vendor/" in path
            response.headers["Cache-Control"] = (
                "public, max-age=31536000, immutable" if versioned else "public, max-age=300"
            )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if path.startswith("/console"):
            response.headers["X-Frame-Options"] = "DENY"
        return response

    @app.middleware("http")
    async def limit_body(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        length = request.headers.get("content-length")
        # Store-data batches are bigger than anything else the API takes.
        limit = (
            ingest.MAX_BODY_BYTES
            if request.url.path.startswith(ingest.PREFIX + "/")
            else MAX_BODY_BYTES
        )
        if length is not None and (not length.isdigit() or int(length) > limit):
            return JSONResponse(
                {
                    "error": {
                        "code": "body_too_large",
                        "message": f"request bodies are limited to {limit} bytes",
                    }
                },
                status_code=413,
            )
        return await call_next(request)

    return app
