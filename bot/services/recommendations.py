"""Co-purchase recommendations: item-to-item association rules, and what to offer a customer.

"Bought together" means **in the same customer's purchase history**, not in the same order.
Apparel is bought over several visits — the shirt and tie this month, the jacket that goes
with them next month — and the store wants exactly that: the customers who bought a blue
shirt and a red tie are the ones to offer a navy jacket (DESIGN.md). Same-order baskets
would miss every such rule (on the demo data the jacket is always a later order). The unit
is the product (P-OXF), not the variant: a size or colour is not a different idea.

For products A → B over the customers with at least one purchase (``N``):

- ``support``    = customers who bought A and B / N
- ``confidence`` = customers who bought A and B / customers who bought A
- ``lift``       = confidence / (customers who bought B / N)  (> 1: more than chance)

``recompute_rules`` rebuilds the rules (kept when at least ``MIN_PAIR_CUSTOMERS`` customers
bought both) and the category best-sellers with a few INSERT … SELECTs. A customer is
offered the products, not yet bought, that the strongest rules from their purchases lead to,
strongest by *added value*, confidence − share of buyers of the consequent (how much more
likely the purchase makes the other one): lift alone favours rare pairs, confidence alone
favours what everybody buys anyway. When there is no such rule (a new customer, a new product) the best-sellers of the
categories they bought from, then of the whole store, fill in.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    Select,
    Table,
    and_,
    cast,
    delete,
    func,
    insert,
    literal,
    select,
    text,
    union_all,
)
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from bot.clock import Clock, utcnow
from bot.errors import NotFound
from bot.models import Message, Order, OrderItem, Outcome, Product, Variant
from bot.models.base import UTCDateTime
from bot.models.crm import PURCHASED_ORDER_STATUSES, ProductAssociation, ProductPopularity
from bot.sentiment import NEGATIVE_THRESHOLD, STRONG_THRESHOLD
from bot.services.consent import has_marketing_consent
from bot.services.outcomes import Turn, record, replay
from bot.services.products import product_views

MIN_PAIR_CUSTOMERS = 3  # fewer customers than this is an anecdote, not a rule
# Rules a customer is offered by: bought together by at least 20 customers (rarer pairs are
# noise that would win on lift alone), at least 10% confidence, 20% more likely than chance.
MIN_OFFER_CUSTOMERS = 20
MIN_CONFIDENCE = 0.1
MIN_LIFT = 1.2


@dataclass(frozen=True)
class RulesReport:
    customers: int
    rules: int
    products: int
    computed_at: datetime


@dataclass(frozen=True)
class Rule:
    antecedent: str  # product external ids
    consequent: str
    customers: int
    support: float
    confidence: float
    lift: float


@dataclass(frozen=True)
class Recommendation:
    product: str  # external id
    name_zh: str
    name_en: str
    category: str
    reason: str  # co_purchase | category_best_seller | best_seller
    score: float  # the best rule's added value, or the product's buyers for a best-seller
    because_of: tuple[str, ...] = ()  # the purchases whose rules point here


def _baskets() -> Select[tuple[int, int]]:
    """Distinct (customer, product) of every purchase."""
    return (
        select(Order.customer_id.label("customer_id"), Variant.product_id.label("product_id"))
        .join(OrderItem, OrderItem.order_id == Order.id)
        .join(Variant, Variant.id == OrderItem.variant_id)
        .where(Order.status.in_(PURCHASED_ORDER_STATUSES))
        .distinct()
    )


# The baskets, made once per recompute into a temporary table that every step reads
# (a CTE would be recomputed by each statement: the join over all order items is the cost).
_BASKET = Table(
    "crm_basket", MetaData(), Column("customer_id", Integer), Column("product_id", Integer)
)


def _make_basket_table(session: Session) -> None:
    dialect = session.get_bind().dialect
    compiled = _baskets().compile(dialect=dialect, compile_kwargs={"literal_binds": True})
    session.execute(text("DROP TABLE IF EXISTS crm_basket"))
    session.execute(text(f"CREATE TEMPORARY TABLE crm_basket AS {compiled}"))
    if dialect.name == "postgresql":
        # Room for the self-join's hashes and sorts in memory, for this transaction only.
        session.execute(text("SET LOCAL work_mem = '256MB'"))
        session.execute(text("ANALYZE crm_basket"))


def recompute_rules(
    *, session: Session, clock: Clock = utcnow, min_pair_customers: int = MIN_PAIR_CUSTOMERS
) -> RulesReport:
    """Rebuild the co-purchase rules and the best-seller table from all orders."""
    now = clock()
    session.flush()  # pending orders count too (raw SQL below does not autoflush)
    _make_basket_table(session)
    basket = _BASKET
    buyers = int(session.scalar(select(func.count(func.distinct(basket.c.customer_id)))) or 0)
    item = (
        select(basket.c.product_id, func.count().label("n"))
        .group_by(basket.c.product_id)
        .cte("item")
    )
    a, b = basket.alias("a"), basket.alias("b")
    # Each unordered pair once (half the work of the self-join), then both directions.
    unordered = (
        select(a.c.product_id.label("p1"), b.c.product_id.label("p2"), func.count().label("n"))
        .join(b, and_(b.c.customer_id == a.c.customer_id, b.c.product_id > a.c.product_id))
        .group_by(a.c.product_id, b.c.product_id)
        .having(func.count() >= min_pair_customers)
        .cte("unordered")
    )
    pair = union_all(
        select(
            unordered.c.p1.label("antecedent_id"),
            unordered.c.p2.label("consequent_id"),
            unordered.c.n,
        ),
        select(unordered.c.p2, unordered.c.p1, unordered.c.n),
    ).cte("pair")
    ia, ib = item.alias("ia"), item.alias("ib")
    n = cast(pair.c.n, Float)
    total = literal(float(max(buyers, 1)), Float)
    confidence = n / cast(ia.c.n, Float)
    rules = (
        select(
            pair.c.antecedent_id,
            pair.c.consequent_id,
            pair.c.n,
            n / total,
            confidence,
            confidence / (cast(ib.c.n, Float) / total),
            literal(now, UTCDateTime),
        )
        .join(ia, ia.c.product_id == pair.c.antecedent_id)
        .join(ib, ib.c.product_id == pair.c.consequent_id)
    )
    session.execute(delete(ProductAssociation))
    session.execute(
        insert(ProductAssociation).from_select(
            [
                "antecedent_id",
                "consequent_id",
                "customers",
                "support",
                "confidence",
                "lift",
                "computed_at",
            ],
            rules,
        )
    )

    sold = (
        select(basket.c.product_id, func.count().label("n"))
        .group_by(basket.c.product_id)
        .subquery("sold")
    )
    customers = func.coalesce(sold.c.n, 0)
    popularity = select(
        Product.id,
        Product.category,
        customers,
        func.rank().over(partition_by=Product.category, order_by=(customers.desc(), Product.id)),
        literal(now, UTCDateTime),
    ).outerjoin(sold, sold.c.product_id == Product.id)
    session.execute(delete(ProductPopularity))
    session.execute(
        insert(ProductPopularity).from_select(
            ["product_id", "category", "customers", "category_rank", "computed_at"], popularity
        )
    )
    session.execute(text("DROP TABLE crm_basket"))
    session.flush()
    return RulesReport(
        customers=buyers,
        rules=int(session.scalar(select(func.count()).select_from(ProductAssociation)) or 0),
        products=int(session.scalar(select(func.count()).select_from(ProductPopularity)) or 0),
        computed_at=now,
    )


def rules_from(*, session: Session, product: str, limit: int = 10) -> list[Rule]:
    """The strongest rules from one product (by external id), by lift."""
    ant, con = aliased(Product), aliased(Product)
    rows = session.execute(
        select(ant.external_id, con.external_id, ProductAssociation)
        .join(ant, ant.id == ProductAssociation.antecedent_id)
        .join(con, con.id == ProductAssociation.consequent_id)
        .where(ant.external_id == product)
        .order_by(ProductAssociation.lift.desc(), con.external_id)
        .limit(limit)
    ).all()
    return [Rule(a, c, r.customers, r.support, r.confidence, r.lift) for a, c, r in rows]


def _strong(min_customers: int) -> tuple[ColumnElement[bool], ...]:
    return (
        ProductAssociation.customers >= min_customers,
        ProductAssociation.confidence >= MIN_CONFIDENCE,
        ProductAssociation.lift >= MIN_LIFT,
    )


def added_value(confidence: float, lift: float) -> float:
    """confidence − P(consequent): how much buying the antecedent raises the chance."""
    return confidence - confidence / lift if lift > 0 else 0.0


def _purchased_products(session: Session, customer_id: int) -> set[int]:
    return set(
        session.scalars(
            select(Variant.product_id)
            .join(OrderItem, OrderItem.variant_id == Variant.id)
            .join(Order, Order.id == OrderItem.order_id)
            .where(Order.customer_id == customer_id, Order.status.in_(PURCHASED_ORDER_STATUSES))
            .distinct()
        )
    )


def _best_sellers(
    session: Session, *, categories: set[str] | None, exclude: set[int], limit: int
) -> list[tuple[Product, int]]:
    query = (
        select(Product, ProductPopularity.customers)
        .join(ProductPopularity, ProductPopularity.product_id == Product.id)
        .where(ProductPopularity.customers > 0)
        .order_by(ProductPopularity.customers.desc(), Product.id)
        .limit(limit + len(exclude))
    )
    if categories is not None:
        query = query.where(ProductPopularity.category.in_(sorted(categories)))
    rows = session.execute(query).all()
    return [(p, n) for p, n in rows if p.id not in exclude][:limit]


def best_sellers(*, session: Session, limit: int = 3) -> list[Recommendation]:
    """The store's best-sellers (most buyers), for a shopper the store knows nothing about."""
    return [
        _offer(p, "best_seller", float(n))
        for p, n in _best_sellers(session, categories=None, exclude=set(), limit=limit)
    ]


def recommend_for_customer(
    *,
    session: Session,
    customer_id: int,
    limit: int = 3,
    min_customers: int = MIN_OFFER_CUSTOMERS,
) -> list[Recommendation]:
    """What to offer a customer: products they have not bought, strongest co-purchase rule
    from any of their purchases first (by added value); best-sellers of the
    categories they bought from, then of the store, when rules run out. Marketing consent is
    the caller's to check (this only says what fits)."""
    owned = _purchased_products(session, customer_id)
    picked: list[Recommendation] = []
    chosen: set[int] = set(owned)
    if owned:
        ant = aliased(Product)
        rows = session.execute(
            select(Product, ant.external_id, ProductAssociation.lift, ProductAssociation.confidence)
            .join(ProductAssociation, ProductAssociation.consequent_id == Product.id)
            .join(ant, ant.id == ProductAssociation.antecedent_id)
            .where(
                ProductAssociation.antecedent_id.in_(sorted(owned)),
                ProductAssociation.consequent_id.not_in(sorted(owned)),
                *_strong(min_customers),
            )
        ).all()
        best: dict[int, tuple[float, Product, list[str]]] = {}
        for product, antecedent, lift, confidence in rows:
            value, _, because = best.get(product.id, (0.0, product, []))
            because.append(antecedent)
            best[product.id] = (max(value, added_value(confidence, lift)), product, because)
        ranked = sorted(best.values(), key=lambda v: (-v[0], v[1].external_id))
        for value, product, because in ranked[:limit]:
            picked.append(_offer(product, "co_purchase", value, tuple(sorted(because))))
            chosen.add(product.id)
    if len(picked) < limit and owned:
        categories = set(
            session.scalars(select(Product.category).where(Product.id.in_(sorted(owned))))
        )
        for product, n in _best_sellers(
            session, categories=categories, exclude=chosen, limit=limit - len(picked)
        ):
            picked.append(_offer(product, "category_best_seller", float(n)))
            chosen.add(product.id)
    if len(picked) < limit:
        for product, n in _best_sellers(
            session, categories=None, exclude=chosen, limit=limit - len(picked)
        ):
            picked.append(_offer(product, "best_seller", float(n)))
    return picked


def also_bought(
    *, session: Session, product: str, limit: int = 3, min_customers: int = MIN_OFFER_CUSTOMERS
) -> list[Recommendation]:
    """For a product page: what its buyers also bought, or — for a product without history
    (new, or never bought with anything) — the best-sellers of its category."""
    this = session.scalars(select(Product).where(Product.external_id == product)).first()
    if this is None:
        raise NotFound(f"no product {product}")
    rows = session.execute(
        select(Product, ProductAssociation.confidence, ProductAssociation.lift)
        .join(ProductAssociation, ProductAssociation.consequent_id == Product.id)
        .where(ProductAssociation.antecedent_id == this.id, *_strong(min_customers))
    ).all()
    scored = sorted(
        ((added_value(c, lift), p) for p, c, lift in rows), key=lambda v: (-v[0], v[1].external_id)
    )
    picked = [_offer(p, "co_purchase", value, (product,)) for value, p in scored[:limit]]
    if len(picked) < limit:
        exclude = {
            this.id,
            *(
                session.scalars(
                    select(Product.id).where(Product.external_id.in_([r.product for r in picked]))
                )
            ),
        }
        for p, n in _best_sellers(
            session, categories={this.category}, exclude=exclude, limit=limit - len(picked)
        ):
            picked.append(_offer(p, "category_best_seller", float(n)))
    return picked


def _offer(
    product: Product, reason: str, score: float, because_of: tuple[str, ...] = ()
) -> Recommendation:
    return Recommendation(
        product.external_id,
        product.name_zh,
        product.name_en,
        product.category,
        reason,
        round(score, 4),
        because_of,
    )


# --- offering one after a resolved journey -------------------------------------------------

OFFER_KIND = "recommendation_offered"
# Journeys that end with the shopper's need met; after a complaint, a cancellation, a
# refund or a return a product suggestion would be tone-deaf.
RESOLVED_JOURNEYS = ("delay_accepted", "invoice_requested", "exchange_requested")


def offer_after_journey(
    *, session: Session, turn: Turn, limit: int = 1, clock: Clock = utcnow
) -> list[Recommendation]:
    """What to offer a shopper whose journey this turn resolved (it recorded one of
    ``RESOLVED_JOURNEYS``), or nothing: only a known customer who consented to marketing
    (checked now, so a withdrawal stops it at once), at most once per conversation, never
    in a conversation with a complaint or an angry message, nor while the latest message is
    still negative ("why is it late?" followed by "that's fine" is not upset any more). What is offered is recorded as an outcome
    (``recommendation_offered``) with the turn, so a retried turn offers the same once."""
    if turn.customer_id is None or turn.conversation_id is None:
        return []
    done = replay(session=session, turn=turn, kind=OFFER_KIND)
    if done is not None:
        return [
            Recommendation(**{**r, "because_of": tuple(r["because_of"])})
            for r in done.get("offers", [])
        ]
    resolved = session.scalar(
        select(func.count())
        .select_from(Outcome)
        .where(Outcome.message_id == turn.message_id, Outcome.kind.in_(RESOLVED_JOURNEYS))
    )
    if not resolved or not has_marketing_consent(session=session, customer_id=turn.customer_id):
        return []
    earlier = session.scalar(
        select(func.count())
        .select_from(Outcome)
        .where(
            Outcome.conversation_id == turn.conversation_id,
            Outcome.kind.in_([OFFER_KIND, "complaint_recorded"]),
        )
    )
    shopper = (Message.conversation_id == turn.conversation_id, Message.role == "shopper")
    angry = session.scalar(
        select(func.count())
        .select_from(Message)
        .where(*shopper, Message.sentiment <= STRONG_THRESHOLD)
    )
    latest = session.scalar(
        select(Message.sentiment).where(*shopper).order_by(Message.id.desc()).limit(1)
    )
    upset = angry or (latest is not None and latest <= NEGATIVE_THRESHOLD)
    if earlier or upset:
        return []
    picks = recommend_for_customer(session=session, customer_id=turn.customer_id, limit=limit * 3)
    offerable = {
        v.external_id
        for v in product_views(session=session, external_ids=[p.product for p in picks])
    }
    offers = [p for p in picks if p.product in offerable][:limit]
    if offers:
        record(
            session=session,
            turn=turn,
            kind=OFFER_KIND,
            detail={"offers": [_offer_detail(o) for o in offers]},
            clock=clock,
        )
    return offers


def _offer_detail(offer: Recommendation) -> dict[str, Any]:
    detail = asdict(offer)
    detail["because_of"] = list(offer.because_of)
    return detail
