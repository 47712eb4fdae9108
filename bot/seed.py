"""The demo store: an apparel shop with realistic, deterministic data.

Fixed random seed, dates relative to an injectable "now": 500+ customers with Chinese and
English names, 200+ variants (shirts, ties, jackets, trousers; CNY prices), 2,000 orders over
the last 90 days with shipments and tracking events, some late with a reason, and a group of
customers who bought a blue shirt and a red tie (some of them also the navy jacket).

The seed builds the store's records and loads them the way a store's systems do, through the
ingestion service (bot/services/ingest.py, behind ``/api/store``), in batches of at most
``MAX_BATCH``. Promotions and member coupons are Kefu's own and are added directly.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from bot.clock import Clock, utcnow
from bot.models import Coupon, Customer, Promotion
from bot.services.canned import seed_store_scripts
from bot.services.ingest import (
    MAX_BATCH,
    CustomerIn,
    IngestReport,
    OrderIn,
    OrderItemIn,
    ProductIn,
    ShipmentIn,
    TrackingEventIn,
    VariantIn,
    upsert_catalogue,
    upsert_customers,
    upsert_orders,
    upsert_shipments,
)

SEED = 20261122
N_CUSTOMERS = 520
N_ORDERS = 2000

SHIRT_SIZES = ("S", "M", "L", "XL", "XXL")
TROUSER_SIZES = ("29", "30", "31", "32", "33", "34", "36")

# (external id, zh name, en name, category, material, price in yuan, colours, sizes)
CATALOGUE: tuple[tuple[str, str, str, str, str, int, tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "P-OXF",
        "牛津纺衬衫",
        "Oxford shirt",
        "shirt",
        "100% cotton",
        199,
        ("blue", "white", "pink"),
        SHIRT_SIZES,
    ),
    (
        "P-NIR",
        "商务免烫衬衫",
        "Non-iron business shirt",
        "shirt",
        "cotton with non-iron finish",
        259,
        ("white", "light-blue", "blue"),
        SHIRT_SIZES,
    ),
    (
        "P-LIN",
        "亚麻休闲衬衫",
        "Linen casual shirt",
        "shirt",
        "100% linen",
        229,
        ("white", "navy", "beige"),
        SHIRT_SIZES,
    ),
    (
        "P-STR",
        "条纹衬衫",
        "Striped shirt",
        "shirt",
        "cotton poplin",
        189,
        ("blue", "pink"),
        SHIRT_SIZES,
    ),
    (
        "P-FRC",
        "法式袖衬衫",
        "French-cuff shirt",
        "shirt",
        "2-ply cotton",
        329,
        ("white", "light-blue"),
        SHIRT_SIZES,
    ),
    (
        "P-POL",
        "珠地棉Polo衫",
        "Piqué polo shirt",
        "shirt",
        "cotton piqué",
        159,
        ("white", "black", "navy", "red"),
        SHIRT_SIZES,
    ),
    (
        "P-SLK",
        "真丝领带",
        "Silk tie",
        "tie",
        "100% mulberry silk",
        169,
        ("red", "navy", "burgundy", "grey"),
        ("F",),
    ),
    ("P-KNT", "针织领带", "Knit tie", "tie", "silk knit", 139, ("black", "navy", "red"), ("F",)),
    ("P-PLD", "格纹领带", "Plaid tie", "tie", "wool blend", 129, ("blue", "green", "red"), ("F",)),
    ("P-BLZ", "海军蓝西装外套", "Navy blazer", "jacket", "wool blend", 899, ("navy",), SHIRT_SIZES),
    (
        "P-WJK",
        "羊毛混纺夹克",
        "Wool-blend jacket",
        "jacket",
        "60% wool, 40% polyester",
        699,
        ("grey", "camel", "navy"),
        SHIRT_SIZES,
    ),
    (
        "P-DNJ",
        "牛仔夹克",
        "Denim jacket",
        "jacket",
        "cotton denim",
        399,
        ("blue", "black"),
        SHIRT_SIZES,
    ),
    (
        "P-TRC",
        "经典风衣",
        "Trench coat",
        "jacket",
        "cotton gabardine",
        1099,
        ("khaki", "black"),
        SHIRT_SIZES,
    ),
    (
        "P-SLT",
        "修身西裤",
        "Slim suit trousers",
        "trousers",
        "wool blend",
        459,
        ("black", "navy", "grey"),
        TROUSER_SIZES,
    ),
    (
        "P-CHN",
        "休闲卡其裤",
        "Chinos",
        "trousers",
        "stretch cotton twill",
        299,
        ("khaki", "navy", "olive"),
        TROUSER_SIZES,
    ),
    (
        "P-JNS",
        "直筒牛仔裤",
        "Straight jeans",
        "trousers",
        "cotton denim",
        349,
        ("blue", "black"),
        TROUSER_SIZES,
    ),
    (
        "P-JOG",
        "针织运动裤",
        "Knit joggers",
        "trousers",
        "cotton jersey",
        199,
        ("grey", "black"),
        SHIRT_SIZES,
    ),
)

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁"
    "谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁"
)
GIVEN = (
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "秀英",
    "霞",
    "平",
    "刚",
    "桂英",
    "浩然",
    "子涵",
    "欣怡",
    "梓萱",
    "宇轩",
    "一诺",
    "思远",
    "雨桐",
    "晨曦",
    "嘉怡",
    "俊杰",
    "佳琪",
)
EN_FIRST = (
    "Emily",
    "James",
    "Olivia",
    "Daniel",
    "Sophia",
    "Michael",
    "Chloe",
    "David",
    "Grace",
    "Ryan",
    "Hannah",
    "Kevin",
    "Lucy",
    "Jason",
    "Amy",
    "Tom",
    "Sarah",
    "Leo",
    "Mia",
    "Ben",
    "Anna",
    "Chris",
    "Zoe",
    "Sam",
)
EN_LAST = (
    "Chen",
    "Smith",
    "Wong",
    "Brown",
    "Lee",
    "Taylor",
    "Lin",
    "Wilson",
    "Ng",
    "Clarke",
    "Tan",
    "Miller",
    "Liu",
    "Davies",
    "Ho",
    "Walker",
)
# (zh, en) cities for addresses and tracking
CITIES = (
    ("上海", "Shanghai"),
    ("北京", "Beijing"),
    ("广州", "Guangzhou"),
    ("深圳", "Shenzhen"),
    ("成都", "Chengdu"),
    ("武汉", "Wuhan"),
    ("南京", "Nanjing"),
    ("西安", "Xi'an"),
    ("重庆", "Chongqing"),
    ("苏州", "Suzhou"),
    ("长沙", "Changsha"),
    ("郑州", "Zhengzhou"),
    ("厦门", "Xiamen"),
    ("青岛", "Qingdao"),
    ("哈尔滨", "Harbin"),
    ("昆明", "Kunming"),
)
WAREHOUSE = ("杭州仓", "Hangzhou warehouse")
HUBS = (
    ("杭州转运中心", "Hangzhou hub"),
    ("上海转运中心", "Shanghai hub"),
    ("武汉转运中心", "Wuhan hub"),
    ("广州转运中心", "Guangzhou hub"),
    ("郑州转运中心", "Zhengzhou hub"),
)
CARRIERS = ("sf", "zto", "yto", "jd", "ems")
TRACKING_PREFIX = {"sf": "SF", "zto": "ZT", "yto": "YT", "jd": "JD", "ems": "EM"}
DELAY_REASONS = ("bad_weather", "courier_suspension", "peak_season", "out_of_stock")
LEVELS = (("regular", 70), ("silver", 18), ("gold", 9), ("vip", 3))

# Demo shoppers a tester can log in as (the README lists them).
DEMO_CUSTOMERS = (
    ("C00001", "张伟", "zh", "gold"),
    ("C00002", "Emily Chen", "en", "vip"),
    ("C00003", "李娜", "zh", "regular"),
    ("C00004", "James Wilson", "en", "silver"),
)


@dataclass(frozen=True)
class SeedReport:
    customers: int
    products: int
    variants: int
    orders: int
    late_shipments: int
    blue_shirt_red_tie_buyers: int


def _phone(rng: random.Random) -> str:
    return "1" + rng.choice("3456789") + "".join(rng.choice("0123456789") for _ in range(9))


def _customers(rng: random.Random, now: datetime) -> list[CustomerIn]:
    customers: list[CustomerIn] = []
    for ext, name, lang, level in DEMO_CUSTOMERS:
        customers.append(
            CustomerIn(
                external_id=ext,
                name=name,
                language=lang,
                membership_level=level,
                phone=_phone(rng),
                points=rng.randint(100, 5000),
                registered_at=now - timedelta(days=400),
            )
        )
    levels = [lvl for lvl, _ in LEVELS]
    weights = [w for _, w in LEVELS]
    for i in range(len(customers) + 1, N_CUSTOMERS + 1):
        if rng.random() < 0.78:
            name = rng.choice(SURNAMES) + rng.choice(GIVEN)
            lang = "zh"
        else:
            name = f"{rng.choice(EN_FIRST)} {rng.choice(EN_LAST)}"
            lang = "en"
        customers.append(
            CustomerIn(
                external_id=f"C{i:05d}",
                name=name,
                language=lang,
                phone=_phone(rng),
                email=f"user{i:05d}@example.com" if rng.random() < 0.6 else None,
                membership_level=rng.choices(levels, weights)[0],
                points=rng.randint(0, 8000),
                registered_at=now - timedelta(days=rng.randint(30, 900)),
            )
        )
    return customers


def _catalogue(
    rng: random.Random,
) -> tuple[list[ProductIn], dict[tuple[str, str], list[VariantIn]]]:
    products: list[ProductIn] = []
    by_colour: dict[tuple[str, str], list[VariantIn]] = {}
    for ext, zh, en, cat, material, price, colours, sizes in CATALOGUE:
        variants: list[VariantIn] = []
        for colour in colours:
            for size in sizes:
                variant = VariantIn(
                    sku=f"{ext}-{colour.upper()}-{size}",
                    size=size,
                    colour=colour,
                    price_fen=price * 100,
                    stock=rng.choice((0, 3, 8, 15, 30, 60)),
                )
                variants.append(variant)
                by_colour.setdefault((ext, colour), []).append(variant)
        products.append(
            ProductIn(
                external_id=ext,
                name_zh=zh,
                name_en=en,
                category=cat,
                material=material,
                description_zh=f"{zh}，面料：{material}。",
                description_en=f"{en}, {material}.",
                variants=variants,
            )
        )
    return products, by_colour


def _order_number(rng: random.Random, used: set[str]) -> str:
    while True:
        number = "5" + "".join(rng.choice("0123456789") for _ in range(11))
        if number not in used:
            used.add(number)
            return number


def _ship(
    rng: random.Random,
    order_number: str,
    placed: datetime,
    now: datetime,
    *,
    late: bool,
    city: tuple[str, str],
    delay_reason: str | None = None,
) -> tuple[ShipmentIn, str]:
    """A shipment with tracking events consistent with the order's age, and the order's
    status that follows from it."""
    carrier = rng.choice(CARRIERS)
    promised = placed + timedelta(days=rng.choice((3, 4, 5)))
    reason = delay_reason or (rng.choice(DELAY_REASONS) if late else None)
    ship_lag = timedelta(hours=rng.randint(4, 40))
    if reason in ("out_of_stock", "courier_suspension"):
        ship_lag += timedelta(days=rng.randint(3, 6))
    transit = timedelta(days=rng.randint(1, 3), hours=rng.randint(0, 20))
    if reason in ("bad_weather", "peak_season"):
        transit += timedelta(days=rng.randint(3, 5))
    shipped_at = placed + ship_lag
    delivered_at = shipped_at + transit
    if reason is not None:
        # A delay worth the name: at least a day past the promise.
        delivered_at = max(delivered_at, promised + timedelta(days=rng.randint(1, 3)))
        transit = delivered_at - shipped_at
    if shipped_at > now:
        # Not shipped yet; a delayed one keeps a reason and a new estimate.
        waiting = ShipmentIn(
            order_number=order_number,
            carrier=carrier,
            status="awaiting_pickup",
            promised_at=promised,
            estimated_at=delivered_at,
            delay_reason=reason,
        )
        return waiting, "paid"
    tracking_number = TRACKING_PREFIX[carrier] + "".join(
        rng.choice("0123456789") for _ in range(12)
    )
    hubs = rng.sample(HUBS, 2)
    steps = [
        (shipped_at, "picked_up", WAREHOUSE),
        (shipped_at + transit * 0.3, "in_transit", hubs[0]),
        (shipped_at + transit * 0.6, "in_transit", hubs[1]),
        (shipped_at + transit * 0.85, "out_for_delivery", (f"{city[0]}派送点", f"{city[1]} depot")),
        (delivered_at, "delivered", (city[0], city[1])),
    ]
    events: list[TrackingEventIn] = []
    status = "awaiting_pickup"
    for at, step, (loc_zh, loc_en) in steps:
        if at > now:
            break
        events.append(
            TrackingEventIn(occurred_at=at, status=step, location_zh=loc_zh, location_en=loc_en)
        )
        status = step
    delivered = status == "delivered"
    shipment = ShipmentIn(
        order_number=order_number,
        carrier=carrier,
        tracking_number=tracking_number,
        status=status,
        promised_at=promised,
        estimated_at=delivered_at,
        shipped_at=shipped_at,
        delivered_at=delivered_at if delivered else None,
        delay_reason=reason,
        events=events,
    )
    return shipment, "delivered" if delivered else "shipped"


@dataclass
class _Draft:
    """An order being made up: its status follows from its shipment, decided after it."""

    number: str
    customer: CustomerIn
    items: list[tuple[VariantIn, int]]
    phone: str
    address: str
    placed_at: datetime
    paid_at: datetime | None
    status: str = "paid"

    def record(self) -> OrderIn:
        return OrderIn(
            order_number=self.number,
            customer_external_id=self.customer.external_id,
            status=self.status,
            total_fen=sum(v.price_fen * q for v, q in self.items),
            phone=self.phone,
            address=self.address,
            placed_at=self.placed_at,
            paid_at=self.paid_at,
            items=[
                OrderItemIn(sku=v.sku, quantity=q, unit_price_fen=v.price_fen)
                for v, q in self.items
            ],
        )


def _make_order(
    rng: random.Random,
    customer: CustomerIn,
    items: list[tuple[VariantIn, int]],
    placed: datetime,
    used: set[str],
) -> _Draft:
    city = rng.choice(CITIES)
    return _Draft(
        number=_order_number(rng, used),
        customer=customer,
        items=items,
        phone=customer.phone or _phone(rng),
        address=f"{city[0]}市{rng.choice('东西南北中')}区{rng.randint(1, 999)}号",
        placed_at=placed,
        paid_at=placed + timedelta(minutes=rng.randint(1, 30)),
    )


R = TypeVar("R")


def _load(
    upsert: Callable[..., IngestReport], session: Session, key: str, records: Sequence[R]
) -> None:
    for start in range(0, len(records), MAX_BATCH):
        upsert(session=session, **{key: records[start : start + MAX_BATCH]})


@dataclass(frozen=True)
class DemoStore:
    """The demo store's records, in the order a store would send them."""

    customers: list[CustomerIn]
    products: list[ProductIn]
    orders: list[OrderIn]
    shipments: list[ShipmentIn]
    report: SeedReport


def demo_store(now: datetime) -> DemoStore:
    """The demo store as of ``now``: the same records every time for the same ``now``."""
    rng = random.Random(SEED)
    now = now.replace(microsecond=0)
    customers = _customers(rng, now)
    products, by_colour = _catalogue(rng)
    all_variants = [v for p in products for v in p.variants]
    drafts: list[_Draft] = []
    shipments: list[ShipmentIn] = []
    late = 0

    def place(
        customer: CustomerIn,
        items: list[tuple[VariantIn, int]],
        placed: datetime,
        *,
        is_late: bool | None = None,
        reason: str | None = None,
        status: str | None = None,
    ) -> None:
        nonlocal late
        order = _make_order(rng, customer, items, placed, used)
        if status in ("cancelled", "pending_payment"):
            order.status = status
            if status == "pending_payment":
                order.paid_at = None
        else:
            if is_late is None:
                is_late = rng.random() < 0.08
            shipment, order.status = _ship(
                rng,
                order.number,
                placed,
                now,
                late=is_late,
                city=rng.choice(CITIES),
                delay_reason=reason,
            )
            shipments.append(shipment)
            late += shipment.delay_reason is not None
            if status == "refunded":
                order.status = "refunded"
        drafts.append(order)

    used: set[str] = set()
    # The marketing example: blue shirt + red tie buyers; most also bought the navy blazer,
    # so co-purchase says "blue shirt + red tie → navy jacket", and the rest are the segment.
    regular = customers[len(DEMO_CUSTOMERS) :]
    pair_buyers = rng.sample(regular, 120)
    blue_shirts = by_colour[("P-OXF", "blue")]
    red_ties = by_colour[("P-SLK", "red")]
    navy = by_colour[("P-BLZ", "navy")]
    for i, customer in enumerate(pair_buyers):
        placed = now - timedelta(days=rng.uniform(20, 89))
        place(customer, [(rng.choice(blue_shirts), 1), (red_ties[0], 1)], placed)
        if i < 70:
            place(customer, [(rng.choice(navy), 1)], placed + timedelta(days=rng.uniform(1, 15)))

    weights = [1.0 / (i % 50 + 1) for i in range(len(regular))]  # some customers buy a lot
    while len(drafts) < N_ORDERS - 7:  # the demo shoppers' seven orders come last
        customer = rng.choices(regular, weights)[0]
        n_items = rng.choices((1, 2, 3), (60, 30, 10))[0]
        items = [
            (rng.choice(all_variants), rng.choices((1, 2), (85, 15))[0]) for _ in range(n_items)
        ]
        placed = now - timedelta(days=rng.uniform(0.05, 90))
        r = rng.random()
        status = (
            "cancelled"
            if r < 0.05
            else "refunded"
            if r < 0.07
            else "pending_payment"
            if r < 0.08 and placed > now - timedelta(days=1)
            else None
        )
        place(customer, items, placed, status=status)

    # Demo shoppers get a known latest order each: in transit, late in transit, late unshipped.
    demo = customers[: len(DEMO_CUSTOMERS)]
    place(demo[0], [(blue_shirts[1], 1), (red_ties[0], 1)], now - timedelta(days=20))
    place(demo[0], [(navy[2], 1)], now - timedelta(days=2, hours=3), is_late=False)
    place(
        demo[1],
        [(by_colour[("P-CHN", "navy")][3], 2)],
        now - timedelta(days=3),
        is_late=True,
        reason="bad_weather",
    )
    place(
        demo[2],
        [(by_colour[("P-WJK", "camel")][1], 1)],
        now - timedelta(days=3),
        is_late=True,
        reason="courier_suspension",
    )
    place(demo[3], [(by_colour[("P-POL", "navy")][2], 1)], now - timedelta(days=10), is_late=False)
    place(
        demo[3],
        [(by_colour[("P-JNS", "blue")][4], 1)],
        now - timedelta(days=1, hours=5),
        is_late=False,
    )
    # 李娜 bought a blue shirt and a red tie, not (yet) the jacket: the marketing example.
    place(demo[2], [(blue_shirts[2], 1), (red_ties[0], 1)], now - timedelta(days=25), is_late=False)

    catalogue = [*products, *_extra_products()]
    report = SeedReport(
        customers=len(customers),
        products=len(catalogue),
        variants=sum(len(p.variants) for p in catalogue),
        orders=len(drafts),
        late_shipments=late,
        blue_shirt_red_tie_buyers=len(pair_buyers),
    )
    return DemoStore(
        customers=customers,
        products=catalogue,
        orders=[d.record() for d in drafts],
        shipments=shipments,
        report=report,
    )


def load_demo_store(*, session: Session, store: DemoStore) -> None:
    """Send the demo store's records through the ingestion service, as a store's systems
    would through /api/store: customers and the catalogue before the orders that point at
    them, the orders before their shipments."""
    _load(upsert_customers, session, "customers", store.customers)
    _load(upsert_catalogue, session, "products", store.products)
    _load(upsert_orders, session, "orders", store.orders)
    _load(upsert_shipments, session, "shipments", store.shipments)


def seed_demo_store(*, session: Session, clock: Clock = utcnow) -> SeedReport:
    """Fill an empty database with the demo store. Refuses to run twice."""
    if session.scalar(select(func.count()).select_from(Customer)):
        raise RuntimeError("the database already holds customers; the demo seed runs once")
    now = clock().replace(microsecond=0)
    store = demo_store(now)
    load_demo_store(session=session, store=store)
    _service_extras(session, now)
    # The agent console's library of the store's scripts (话术库), incl. the delay script.
    seed_store_scripts(session=session, clock=lambda: now)
    session.flush()
    return store.report


# Goods outside the 7-day no-reason return, promotions and member coupons. Added after the
# orders, with their own random generator, so everything above stays as it was.
EXTRA_PRODUCTS: tuple[
    tuple[str, str, str, str, str, int, tuple[str, ...], tuple[str, ...], bool], ...
] = (
    (
        "P-EMB",
        "定制刺绣衬衫",
        "Custom embroidered shirt",
        "shirt",
        "100% cotton",
        399,
        ("white", "blue"),
        SHIRT_SIZES,
        True,
    ),
    (
        "P-UND",
        "莫代尔内裤",
        "Modal boxer briefs",
        "underwear",
        "modal cotton",
        79,
        ("black", "grey", "navy"),
        ("M", "L", "XL"),
        False,
    ),
)
PROMOTIONS = (
    ("FULL300", "满300减30", "¥30 off orders of ¥300 or more", 30000, 3000, None),
    ("FULL800", "满800减100", "¥100 off orders of ¥800 or more", 80000, 10000, None),
    (
        "GOLD50",
        "黄金及以上会员满500减50",
        "Gold members and above: ¥50 off ¥500",
        50000,
        5000,
        "gold",
    ),
)
MEMBER_COUPON_FEN = {"silver": 1000, "gold": 2000, "vip": 5000}


def _extra_products() -> list[ProductIn]:
    rng = random.Random(SEED + 3)
    products = []
    for ext, zh, en, cat, material, price, colours, sizes, customised in EXTRA_PRODUCTS:
        products.append(
            ProductIn(
                external_id=ext,
                name_zh=zh,
                name_en=en,
                category=cat,
                material=material,
                customised=customised,
                description_zh=f"{zh}，面料：{material}。",
                description_en=f"{en}, {material}.",
                variants=[
                    VariantIn(
                        sku=f"{ext}-{colour.upper()}-{size}",
                        size=size,
                        colour=colour,
                        price_fen=price * 100,
                        stock=rng.choice((3, 8, 15, 30)),
                    )
                    for colour in colours
                    for size in sizes
                ],
            )
        )
    return products


def _service_extras(session: Session, now: datetime) -> None:
    for code, zh, en, min_spend, discount, level in PROMOTIONS:
        session.add(
            Promotion(
                code=code,
                title_zh=zh,
                title_en=en,
                min_spend_fen=min_spend,
                discount_fen=discount,
                member_level=level,
                starts_at=now - timedelta(days=10),
                ends_at=now + timedelta(days=20),
            )
        )
    demo = [ext for ext, *_ in DEMO_CUSTOMERS]
    for customer in session.scalars(
        select(Customer).where(Customer.external_id.in_(demo)).order_by(Customer.external_id)
    ):
        amount = MEMBER_COUPON_FEN.get(customer.membership_level)
        if amount:
            session.add(
                Coupon(
                    code=f"M{customer.external_id}",
                    customer_id=customer.id,
                    source="member",
                    amount_fen=amount,
                    min_spend_fen=amount * 10,
                    expires_at=now + timedelta(days=30),
                    created_at=now - timedelta(days=1),
                )
            )


# Demo shoppers who said yes to offers: Emily Chen and 李娜 did; 张伟 and James Wilson did not.
DEMO_CONSENTING = ("C00002", "C00003")
DEMO_CONSENT_SHARE = 0.6  # of the other customers


def seed_demo_consents(*, session: Session, clock: Clock = utcnow) -> int:
    """Marketing consent as a store would import it (source ``import``): the demo shoppers
    in ``DEMO_CONSENTING`` and a fixed share of the rest. One audit event for the import,
    with the count only. Returns how many customers consented."""
    from bot.models.privacy import Consent
    from bot.services import audit
    from bot.services.consent import MARKETING
    from bot.settings import get_settings

    rng = random.Random(20261201)
    now = clock().replace(microsecond=0)
    version = get_settings().consent_version
    rows = [
        {
            "customer_id": cid,
            "purpose": MARKETING,
            "granted": True,
            "version": version,
            "source": "import",
            "recorded_at": now - timedelta(days=30),
        }
        for cid, ext in session.execute(
            select(Customer.id, Customer.external_id).order_by(Customer.id)
        )
        if ext in DEMO_CONSENTING
        or (ext not in {c[0] for c in DEMO_CUSTOMERS} and rng.random() < DEMO_CONSENT_SHARE)
    ]
    if rows:
        session.execute(insert(Consent), rows)
        audit.record(
            session=session,
            actor="system",
            action="consent_change",
            customer_id=None,
            detail={"source": "import", "granted": True, "count": len(rows), "version": version},
            clock=clock,
        )
    return len(rows)
