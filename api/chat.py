"""Shopper chat, independent of transport: the WebSocket and HTTP routes both use this.

The gateway, not the client, decides who the shopper is and which conversation a message
belongs to. A message is checked, stored (idempotent on the client's id), acknowledged, and
only then queued for its turn.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from api.db import in_db
from api.ratelimit import ChatLimits
from api.turns import TurnService
from bot.errors import ConversationBusy, InvalidInput, InvalidToken, MessageTooLong, RateLimited
from bot.identity import sign_visitor, verify_customer_token, verify_visitor
from bot.sentiment import score as score_sentiment
from bot.services import consent
from bot.services import conversations as conv
from bot.services.conversations import ChatSession, Inbound, MessageView
from bot.settings import Settings

MAX_CLIENT_ID = 64
MAX_PAYLOAD = 200


@dataclass(frozen=True)
class Opened:
    session: ChatSession
    visitor_token: str
    history: list[MessageView]

    def to_dict(self) -> dict[str, Any]:
        return {
            "visitor_token": self.visitor_token,
            "conversation_id": self.session.conversation_id,
            "language": self.session.language,
            "customer": {"name": self.session.customer_name} if self.session.customer_id else None,
            "history": [m.to_dict() for m in self.history],
        }


class ChatService:
    def __init__(self, *, settings: Settings, turns: TurnService, limits: ChatLimits) -> None:
        self.settings = settings
        self.turns = turns
        self.limits = limits

    async def open(
        self,
        *,
        visitor_token: str | None,
        customer_token: str | None,
        language: str | None,
        after_id: int = 0,
        require_visitor: bool = False,
        ip: str = "unknown",
    ) -> Opened:
        """Resolve identity and the open conversation; ``InvalidToken`` on a bad store token,
        ``RateLimited`` when a new conversation would pass the visitor's or the address's limit.

        A bad or expired visitor token is replaced by a new visitor, not refused (the widget
        simply starts over), unless ``require_visitor`` (HTTP messages) says it must be valid.
        """
        visitor_id: str | None = None
        if visitor_token:
            try:
                visitor_id = verify_visitor(
                    visitor_token,
                    key=self.settings.secret_key,
                    max_age=timedelta(days=self.settings.visitor_token_max_age_days),
                )
            except InvalidToken:
                if require_visitor:
                    raise
                visitor_id = None
        elif require_visitor:
            raise InvalidToken("visitor token required")
        external_id = None
        if customer_token:
            external_id = verify_customer_token(
                customer_token, key=self.settings.store_token_secret
            ).external_id

        wait = await self.limits.conversation_wait(visitor_id=visitor_id, ip=ip)

        def work(session: Session) -> tuple[ChatSession, list[MessageView]]:
            chat = conv.start_session(
                session=session,
                visitor_id=visitor_id,
                customer_external_id=external_id,
                language=language if language in ("zh", "en") else "zh",
                allow_new=not wait,
            )
            history = conv.history(
                session=session, conversation_id=chat.conversation_id, after_id=after_id
            )
            return chat, history

        try:
            chat, history = await in_db(work)
        except RateLimited as exc:
            raise RateLimited("conversations", wait) from exc
        if chat.created:
            await self.limits.conversation_started(visitor_id=chat.visitor_id, ip=ip)
        token = (
            visitor_token
            if visitor_id == chat.visitor_id and visitor_token
            else sign_visitor(chat.visitor_id, key=self.settings.secret_key)
        )
        return Opened(chat, token, history)

    def check_text(self, text: str) -> None:
        if len(text) > self.settings.max_message_chars:
            raise MessageTooLong(str(self.settings.max_message_chars))

    async def receive(
        self,
        chat: ChatSession,
        *,
        client_id: Any,
        text: Any,
        payload: Any = None,
        page: dict[str, Any] | None = None,
    ) -> tuple[Inbound, Any]:
        """Store one shopper message and queue its turn.

        Returns the stored message and a future of the turn's replies (None for a repeat of
        a message already stored). Raises ``MessageTooLong`` / ``InvalidInput`` before
        storing anything, ``RateLimited`` past the messages-per-minute limit (a repeat does
        not count), and ``ConversationBusy`` when too many turns are waiting.
        """
        if not isinstance(client_id, str) or not 0 < len(client_id) <= MAX_CLIENT_ID:
            raise InvalidInput("client_id must be a string of 1 to 64 characters")
        if not isinstance(text, str):
            raise InvalidInput("text must be a string")
        self.check_text(text)
        if payload is not None and (not isinstance(payload, str) or len(payload) > MAX_PAYLOAD):
            raise InvalidInput("payload must be a short string")
        if not text.strip() and not payload:
            raise InvalidInput("empty message")
        if self.turns.queue.is_full(chat.conversation_id):
            raise ConversationBusy(chat.conversation_id)
        repeat = await in_db(
            lambda s: conv.find_inbound(
                session=s, conversation_id=chat.conversation_id, client_msg_id=client_id
            )
        )
        if repeat is not None:
            return repeat, None
        await self.limits.message(chat.conversation_id)
        sentiment = score_sentiment(text).score if text.strip() else None

        def work(session: Session) -> Inbound:
            existing = conv.find_inbound(
                session=session, conversation_id=chat.conversation_id, client_msg_id=client_id
            )
            if existing is not None:
                return existing
            if payload is not None and payload not in conv.offered_payloads(
                session=session, conversation_id=chat.conversation_id
            ):
                raise InvalidInput("unknown_button")
            return conv.record_inbound(
                session=session,
                conversation_id=chat.conversation_id,
                client_msg_id=client_id,
                text=text,
                payload=payload,
                sentiment=sentiment,
            )

        inbound = await in_db(work)
        if inbound.duplicate:
            return inbound, None
        future = self.turns.queue.submit(
            chat.conversation_id, inbound.message.id, {"page": page} if page else None
        )
        return inbound, future

    async def consent_state(self, chat: ChatSession) -> dict[str, Any] | None:
        """The logged-in shopper's marketing consent (None for an anonymous visitor)."""
        customer_id, version = chat.customer_id, self.settings.consent_version
        if customer_id is None:
            return None
        state: dict[str, Any] = await in_db(
            lambda s: consent.marketing_state(session=s, customer_id=customer_id, version=version)
        )
        return state

    async def set_consent(self, chat: ChatSession, marketing: Any) -> dict[str, Any]:
        """The shopper gives or withdraws marketing consent from the widget (at once)."""
        if chat.customer_id is None:
            raise InvalidToken("log in to the store to manage your consent")
        if not isinstance(marketing, bool):
            raise InvalidInput("marketing must be true or false")
        customer_id, version = chat.customer_id, self.settings.consent_version

        def work(session: Session) -> dict[str, Any]:
            consent.set_consent(
                session=session,
                customer_id=customer_id,
                granted=marketing,
                source="widget",
                version=version,
            )
            return consent.marketing_state(
                session=session, customer_id=customer_id, version=version
            )

        state: dict[str, Any] = await in_db(work)
        return state

    async def history(self, chat: ChatSession, after_id: int) -> list[MessageView]:
        def work(session: Session) -> list[MessageView]:
            return conv.history(
                session=session, conversation_id=chat.conversation_id, after_id=after_id
            )

        return await in_db(work)
