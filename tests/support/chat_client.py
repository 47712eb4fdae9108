"""A shopper's chat client over the gateway's WebSocket, as the widget speaks it."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import websockets


class ChatClient:
    def __init__(self, api_url: str) -> None:
        self.ws_url = api_url.replace("http://", "ws://") + "/api/chat/ws"
        self.origin = api_url
        self.ws: Any = None
        self.welcome: dict[str, Any] = {}

    async def connect(self, **hello: Any) -> dict[str, Any]:
        self.ws = await websockets.connect(self.ws_url, origin=self.origin)  # type: ignore[arg-type]
        await self.ws.send(json.dumps({"type": "hello", **hello}))
        self.welcome = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
        assert self.welcome["type"] == "welcome", self.welcome
        return self.welcome

    async def say(
        self, text: str, *, payload: str | None = None, timeout: float = 20
    ) -> list[dict[str, Any]]:
        """Send one message; return the bot messages of its turn."""
        client_id = uuid.uuid4().hex
        frame: dict[str, Any] = {"type": "message", "client_id": client_id, "text": text}
        if payload:
            frame["payload"] = payload
        await self.ws.send(json.dumps(frame))
        acked, done = False, False
        messages: list[dict[str, Any]] = []
        while not (acked and done):
            event = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if event["type"] == "ack" and event["client_id"] == client_id:
                acked = True
            elif event["type"] == "error":
                raise RuntimeError(event)
            elif event["type"] == "message":
                messages.append(event["message"])
            elif event == {"type": "typing", "on": False}:
                done = True
        return messages

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
