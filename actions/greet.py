"""Greeting: a known shopper is greeted by name."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.common import customer_id, in_session
from bot.services.customers import customer_brief


class ActionGreet(Action):
    def name(self) -> str:
        return "action_greet"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        cid = customer_id(tracker)
        brief = (
            await in_session(lambda s: customer_brief(session=s, customer_id=cid)) if cid else None
        )
        if brief is not None:
            dispatcher.utter_message(response="utter_greet_known", name=brief.name)
        else:
            dispatcher.utter_message(response="utter_greet")
        return []
