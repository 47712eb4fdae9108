"""Returns and exchanges: 7-day no-reason eligibility from the delivery date and the
product's category, the request itself, the refund timeline and the status of a request."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.common import (
    conversation_turn,
    customer_id,
    date,
    first_entity,
    in_session,
    item_text,
    joined,
    language,
    latest_text,
    money,
    pending,
    pending_detail,
)
from actions.delay import named_order, not_found
from actions.products import offer_after_journey
from bot.errors import NotEligible, OrderNotFound
from bot.labels import label
from bot.services.returns import (
    RequestView,
    ReturnCheck,
    asks_for_status,
    check_return,
    create_request,
    exchange_choices,
    exchange_option,
    is_quality_problem,
    latest_request,
    size_in_text,
    size_shift,
)
from bot.settings import get_settings


def _line(check: ReturnCheck, lang: str) -> str:
    line = check.line
    return item_text(line.name_zh, line.name_en, line.colour, line.size, lang)


def _request_values(request: RequestView, lang: str) -> dict[str, Any]:
    return {
        "number": request.number,
        "kind": label("request_kind", request.kind, lang),
        "status": label("request_status", request.status, lang),
        "item": item_text(request.name_zh, request.name_en, request.colour, request.size, lang),
        "order_number": request.order_number,
        "refund": money(request.refund_fen),
        "days": get_settings().refund_business_days,
        "to": f"{label('colour', request.target_colour, lang)}/{request.target_size}",
    }


async def _check(tracker: Tracker, cid: int) -> ReturnCheck:
    text = latest_text(tracker)
    number = named_order(tracker)
    product = first_entity(tracker, "product")
    return await in_session(
        lambda s: check_return(
            session=s,
            customer_id=cid,
            order_number=number,
            product=str(product) if product else None,
            quality=is_quality_problem(text),
        )
    )


class ActionOfferReturn(Action):
    def name(self) -> str:
        return "action_offer_return"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        cid = customer_id(tracker)
        if cid is None:
            dispatcher.utter_message(response="utter_login_required")
            return pending(None)
        lang = language(tracker)
        days = get_settings().refund_business_days
        if asks_for_status(latest_text(tracker)):
            request = await in_session(lambda s: latest_request(session=s, customer_id=cid))
            if request is None:
                dispatcher.utter_message(response="utter_no_requests", days=days)
            else:
                dispatcher.utter_message(
                    response="utter_request_status", **_request_values(request, lang)
                )
                if request.kind == "return" and request.status != "refunded":
                    dispatcher.utter_message(response="utter_refund_timeline", days=days)
            return pending(None)
        try:
            check = await _check(tracker, cid)
        except OrderNotFound:
            return not_found(dispatcher, named_order(tracker))
        values = {
            "order_number": check.order_number,
            "item": _line(check, lang),
            "delivered": date(check.delivered_at, lang),
            "deadline": date(check.deadline, lang),
            "refund": money(check.refund_fen),
            "days": days,
        }
        if not check.eligible:
            dispatcher.utter_message(
                response="utter_return_not_eligible",
                reason=label("not_eligible", check.reason, lang),
                **values,
            )
            return pending(None)
        dispatcher.utter_message(
            response="utter_confirm_return_quality" if check.quality else "utter_confirm_return",
            **values,
        )
        return pending(
            "return_confirm",
            {
                "order_number": check.order_number,
                "item_id": check.line.item_id,
                "quality": check.quality,
            },
        )


class ActionCreateReturn(Action):
    def name(self) -> str:
        return "action_create_return"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        detail = pending_detail(tracker)
        turn = conversation_turn(tracker)
        if turn is None or turn.customer_id is None or not detail.get("order_number"):
            dispatcher.utter_message(response="utter_login_required")
            return pending(None)
        lang = language(tracker)
        try:
            request = await in_session(
                lambda s: create_request(
                    session=s,
                    turn=turn,
                    kind="return",
                    order_number=detail["order_number"],
                    item_id=int(detail["item_id"]),
                    quality=bool(detail.get("quality")),
                )
            )
        except OrderNotFound:
            return not_found(dispatcher, detail["order_number"])
        except NotEligible as exc:
            dispatcher.utter_message(
                response="utter_request_refused", reason=label("not_eligible", exc.reason, lang)
            )
            return pending(None)
        dispatcher.utter_message(response="utter_return_created", **_request_values(request, lang))
        return pending(None)


class ActionOfferExchange(Action):
    """Which line, and what for: a size or colour named, or one size up/down."""

    def name(self) -> str:
        return "action_offer_exchange"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        cid = customer_id(tracker)
        if cid is None:
            dispatcher.utter_message(response="utter_login_required")
            return pending(None)
        lang = language(tracker)
        detail = pending_detail(tracker) if tracker.get_slot("pending") == "exchange_choice" else {}
        if not detail:
            try:
                check = await _check(tracker, cid)
            except OrderNotFound:
                return not_found(dispatcher, named_order(tracker))
            if not check.eligible:
                dispatcher.utter_message(
                    response="utter_exchange_not_eligible",
                    order_number=check.order_number,
                    item=_line(check, lang),
                    reason=label("not_eligible", check.reason, lang),
                )
                return pending(None)
            detail = {
                "order_number": check.order_number,
                "item_id": check.line.item_id,
                "quality": check.quality,
                "name_zh": check.line.name_zh,
                "name_en": check.line.name_en,
                "size": check.line.size,
                "colour": check.line.colour,
            }
        item_id = int(detail["item_id"])
        item = item_text(
            detail["name_zh"], detail["name_en"], detail["colour"], detail["size"], lang
        )
        text = latest_text(tracker)
        size = first_entity(tracker, "size") or (
            size_in_text(text) if tracker.get_slot("pending") == "exchange_choice" else None
        )
        colour = first_entity(tracker, "colour")
        shift = size_shift(text)
        choices = await in_session(lambda s: exchange_choices(session=s, item_id=item_id))
        options = joined(
            [f"{label('colour', c.colour, lang)}/{c.size}" for c in choices[:12]], lang
        )
        if not (size or colour or shift):
            dispatcher.utter_message(
                response="utter_ask_exchange_choice",
                order_number=detail["order_number"],
                item=item,
                options=options,
            )
            return pending("exchange_choice", detail)
        option = await in_session(
            lambda s: exchange_option(
                session=s,
                item_id=item_id,
                size=str(size) if size else None,
                colour=str(colour) if colour else None,
                shift=shift,
            )
        )
        if option is None:
            dispatcher.utter_message(
                response="utter_exchange_no_such_variant", item=item, options=options
            )
            return pending("exchange_choice", detail)
        if option.stock <= 0:
            dispatcher.utter_message(
                response="utter_exchange_out_of_stock",
                item=item,
                to=f"{label('colour', option.colour, lang)}/{option.size}",
                options=options,
            )
            return pending("exchange_choice", detail)
        to = f"{label('colour', option.colour, lang)}/{option.size}"
        dispatcher.utter_message(
            response="utter_confirm_exchange",
            order_number=detail["order_number"],
            item=item,
            to=to,
        )
        return pending("exchange_confirm", {**detail, "variant_id": option.variant_id})


class ActionCreateExchange(Action):
    def name(self) -> str:
        return "action_create_exchange"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        detail = pending_detail(tracker)
        turn = conversation_turn(tracker)
        if turn is None or turn.customer_id is None or not detail.get("variant_id"):
            dispatcher.utter_message(response="utter_login_required")
            return pending(None)
        lang = language(tracker)
        try:
            request = await in_session(
                lambda s: create_request(
                    session=s,
                    turn=turn,
                    kind="exchange",
                    order_number=detail["order_number"],
                    item_id=int(detail["item_id"]),
                    quality=bool(detail.get("quality")),
                    exchange_variant_id=int(detail["variant_id"]),
                )
            )
        except OrderNotFound:
            return not_found(dispatcher, detail["order_number"])
        except NotEligible as exc:
            dispatcher.utter_message(
                response="utter_request_refused", reason=label("not_eligible", exc.reason, lang)
            )
            return pending(None)
        dispatcher.utter_message(
            response="utter_exchange_created", **_request_values(request, lang)
        )
        await offer_after_journey(dispatcher, tracker, turn)
        return pending(None)
