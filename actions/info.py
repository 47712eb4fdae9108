"""Answers from the store's configuration and the shopper's account: shipping rules,
promotions and coupons (no haggling), membership and points, payment help."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.common import (
    customer_id,
    date,
    in_session,
    joined,
    language,
    latest_text,
    money,
    pending,
)
from bot.labels import label
from bot.services.coupons import active_promotions, coupons_for_customer, is_haggling
from bot.services.membership import membership
from bot.services.policies import shipping_policy
from bot.settings import get_settings


class ActionShippingInfo(Action):
    def name(self) -> str:
        return "action_shipping_info"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        lang = language(tracker)
        policy = shipping_policy()
        dispatcher.utter_message(
            response="utter_shipping_info",
            fee=money(policy.fee_fen),
            threshold=money(policy.free_threshold_fen),
            carriers=joined([label("carrier", c, lang) for c in policy.carriers], lang),
            times="\n".join(
                f"· {label('region', region, lang)}: {days}"
                for region, days in policy.delivery_days
            ),
        )
        return pending(None)


class ActionCouponsPromotions(Action):
    def name(self) -> str:
        return "action_coupons_promotions"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        lang = language(tracker)
        cid = customer_id(tracker)
        if is_haggling(latest_text(tracker)):
            dispatcher.utter_message(response="utter_no_haggling")
        promotions = await in_session(lambda s: active_promotions(session=s, customer_id=cid))
        if promotions:
            dispatcher.utter_message(
                response="utter_promotions",
                promotions=joined(
                    [p.title_en if lang == "en" else p.title_zh for p in promotions], lang
                ),
                ends=date(min(p.ends_at for p in promotions), lang),
            )
        else:
            dispatcher.utter_message(response="utter_no_promotions")
        if cid is None:
            dispatcher.utter_message(response="utter_coupons_need_login")
            return pending(None)
        coupons = await in_session(lambda s: coupons_for_customer(session=s, customer_id=cid))
        if coupons:
            best = max(coupons, key=lambda c: c.amount_fen)
            dispatcher.utter_message(
                response="utter_member_coupons",
                count=len(coupons),
                amount=money(best.amount_fen),
                min_spend=money(best.min_spend_fen),
                expires=date(best.expires_at, lang),
            )
        else:
            dispatcher.utter_message(response="utter_no_member_coupons")
        return pending(None)


class ActionMembershipPoints(Action):
    def name(self) -> str:
        return "action_membership_points"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        lang = language(tracker)
        cid = customer_id(tracker)
        per_yuan = get_settings().points_per_yuan
        view = (
            await in_session(lambda s: membership(session=s, customer_id=cid))
            if cid is not None
            else None
        )
        if view is None:
            dispatcher.utter_message(response="utter_membership_anonymous", per_yuan=per_yuan)
            return pending(None)
        dispatcher.utter_message(
            response="utter_membership",
            level=label("membership_level", view.level, lang),
            points=view.points,
            worth=money(view.points * 100 // per_yuan),
            discount=view.discount_percent,
            rate=view.points_per_yuan_spent,
            per_yuan=per_yuan,
        )
        return pending(None)
