"""Product questions (stock per size and colour, price, material, care, size advice) for
the product named or the product page the shopper is on, and recommendations."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.common import (
    customer_id,
    first_entity,
    in_session,
    joined,
    language,
    latest_text,
    money,
    page_product_id,
    pending,
    pending_detail,
)
from bot.labels import label
from bot.services.outcomes import Turn
from bot.services.products import (
    ProductView,
    aspects,
    body_measurements,
    care_code,
    find_product,
    match_products,
    product_views,
    recommendations,
    size_advice,
)
from bot.services.recommendations import offer_after_journey as offer_for


def product_name(product: ProductView, lang: str) -> str:
    return product.name_en if lang == "en" else product.name_zh


def price_text(product: ProductView) -> str:
    low, high = product.price_range
    return money(low) if low == high else f"{money(low)}–{money(high)}"


def availability(product: ProductView, lang: str) -> str:
    """In-stock sizes per colour: "蓝色 S/M/L、白色 M"."""
    by_colour: dict[str, list[str]] = {}
    for v in product.in_stock():
        by_colour.setdefault(v.colour, []).append(v.size)
    return joined(
        [
            f"{label('colour', colour, lang)} {'/'.join(sizes)}"
            for colour, sizes in by_colour.items()
        ],
        lang,
    )


def variant_text(size: str | None, colour: str | None, lang: str) -> str:
    parts = [label("colour", colour, lang) if colour else "", size.upper() if size else ""]
    return "/".join(p for p in parts if p)


class ActionAnswerProductQuestion(Action):
    def name(self) -> str:
        return "action_answer_product_question"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        lang = language(tracker)
        text = latest_text(tracker)
        detail = pending_detail(tracker) if tracker.get_slot("pending") == "product_choice" else {}
        question = f"{detail.get('text', '')} {text}".strip()
        # The answer to "which product?" may be just its name, which NLU may not tag.
        name = first_entity(tracker, "product") or (text if detail else None)
        page = page_product_id(tracker)
        product = await in_session(
            lambda s: find_product(session=s, name=str(name) if name else None, external_id=page)
        )
        if product is None:
            candidates = (
                await in_session(lambda s: match_products(session=s, name=str(name)))
                if name
                else []
            )
            if len(candidates) > 1:
                dispatcher.utter_message(
                    response="utter_ask_which_of_products",
                    products=joined([product_name(c, lang) for c in candidates], lang),
                )
                return pending("product_choice", {"text": question})
            if name:
                dispatcher.utter_message(response="utter_product_not_found", product=str(name))
                return pending(None)
            dispatcher.utter_message(response="utter_ask_which_product")
            return pending("product_choice", {"text": question})
        values: dict[str, Any] = {
            "product": product_name(product, lang),
            "price": price_text(product),
            "material": label("material", product.material, lang),
            "care": label("care", care_code(product.material), lang),
            "available": availability(product, lang),
        }
        size = first_entity(tracker, "size")
        colour = first_entity(tracker, "colour")
        # "有XXL吗": a size or colour alone asks whether it is in stock.
        asked = aspects(question) or (["stock"] if size or colour else ["summary"])
        for aspect in asked:
            if aspect == "stock":
                self._stock(dispatcher, product, size, colour, values, lang)
            elif aspect == "price":
                dispatcher.utter_message(response="utter_product_price", **values)
            elif aspect == "material":
                dispatcher.utter_message(response="utter_product_material", **values)
            elif aspect == "care":
                dispatcher.utter_message(response="utter_product_care", **values)
            elif aspect == "size":
                self._size(dispatcher, product, question, values)
            else:
                dispatcher.utter_message(response="utter_product_summary", **values)
        return pending(None)

    @staticmethod
    def _stock(
        dispatcher: CollectingDispatcher,
        product: ProductView,
        size: Any,
        colour: Any,
        values: dict[str, Any],
        lang: str,
    ) -> None:
        if not (size or colour):
            if values["available"]:
                dispatcher.utter_message(response="utter_product_stock_summary", **values)
            else:
                dispatcher.utter_message(response="utter_product_sold_out", **values)
            return
        size_s, colour_s = (str(size) if size else None), (str(colour) if colour else None)
        variant = variant_text(size_s, colour_s, lang)
        if not product.has(size=size_s, colour=colour_s):
            dispatcher.utter_message(
                response="utter_product_no_such_variant", variant=variant, **values
            )
            return
        stock = sum(v.stock for v in product.in_stock(size=size_s, colour=colour_s))
        if stock > 0:
            dispatcher.utter_message(
                response="utter_product_in_stock", variant=variant, stock=stock, **values
            )
        else:
            dispatcher.utter_message(
                response="utter_product_variant_out_of_stock", variant=variant, **values
            )

    @staticmethod
    def _size(
        dispatcher: CollectingDispatcher,
        product: ProductView,
        question: str,
        values: dict[str, Any],
    ) -> None:
        if product.category == "tie":
            dispatcher.utter_message(response="utter_product_one_size", **values)
            return
        height, weight = body_measurements(question)
        advice = size_advice(product, question)
        if advice is None:
            dispatcher.utter_message(response="utter_ask_body_measurements", **values)
            return
        dispatcher.utter_message(
            response="utter_product_size_advice",
            size=advice,
            height=f"{height:g}" if height else "-",
            weight=f"{weight:g}" if weight else "-",
            **values,
        )


class ActionRecommendProducts(Action):
    def name(self) -> str:
        return "action_recommend_products"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        lang = language(tracker)
        name = first_entity(tracker, "product")
        page = page_product_id(tracker)
        product = await in_session(
            lambda s: find_product(session=s, name=str(name) if name else None, external_id=page)
        )
        who = customer_id(tracker)
        picks = await in_session(
            lambda s: recommendations(
                session=s,
                product_external_id=product.external_id if product else None,
                customer_id=who,
            )
        )
        listing = joined([f"{product_name(p, lang)} {price_text(p)}" for p in picks], lang)
        if product is not None and picks:
            dispatcher.utter_message(
                response="utter_recommendations_with",
                product=product_name(product, lang),
                products=listing,
            )
        else:
            dispatcher.utter_message(response="utter_recommendations", products=listing)
        return pending(None)


async def offer_after_journey(
    dispatcher: CollectingDispatcher, tracker: Tracker, turn: Turn
) -> None:
    """After a journey that ended well, one product that fits the shopper's purchases — only
    for a shopper who consented to marketing, once per conversation, never to an upset one
    (``bot.services.recommendations.offer_after_journey`` decides and records it)."""
    offers = await in_session(lambda s: offer_for(session=s, turn=turn))
    if not offers:
        return
    views = await in_session(
        lambda s: product_views(session=s, external_ids=[o.product for o in offers])
    )
    if not views:
        return
    lang = language(tracker)
    dispatcher.utter_message(
        response="utter_offer_after_journey",
        product=f"{product_name(views[0], lang)} {price_text(views[0])}",
    )
