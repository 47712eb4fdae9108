"""Product facts for shoppers' questions: stock per size and colour, price, material, care,
and size advice from the size chart; the product named, or the product page they are on."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from bot.models import Product
from bot.services.policies import recommend_size

ASPECTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "size",
        re.compile(
            r"尺码|尺寸|码数|什么码|哪个码|几码|偏大|偏小|身高|体重|\d\s*斤|kg|公斤|cm|size|fit|height|weight|lbs|pounds",
            re.I,
        ),
    ),
    (
        "stock",
        re.compile(
            r"有货|库存|现货|还有吗|有没有|断码|补货|卖完|in stock|available|sold out|restock|have (it|this|one|any)",
            re.I,
        ),
    ),
    ("price", re.compile(r"多少钱|价格|价钱|几块|多少米|price|cost|how much", re.I)),
    (
        "material",
        re.compile(
            r"材质|面料|纯棉|棉的|成分|什么料|真丝|羊毛|亚麻|material|fabric|made of|cotton|linen|silk|wool",
            re.I,
        ),
    ),
    (
        "care",
        re.compile(
            r"洗|熨|缩水|掉色|起球|保养|wash|iron|care|shrink|dry.?clean|fade|pilling", re.I
        ),
    ),
)
_CM = re.compile(r"(1[4-9]\d|20\d)\s*(?:cm|厘米|公分)?(?![\d.])", re.I)
_METRES = re.compile(r"(?<![\d.])(1[.．][5-9]\d?)\s*(?:m|米)(?![a-z])", re.I)
_FEET = re.compile(r"(\d)\s*(?:'|ft|foot|feet)\s*(\d{1,2})?", re.I)
_KG = re.compile(r"(\d{2,3}(?:\.\d)?)\s*(?:kg|公斤|千克)", re.I)
_JIN = re.compile(r"(\d{2,3})\s*斤")
_LBS = re.compile(r"(\d{2,3})\s*(?:lbs?|pounds)", re.I)
_BARE_WEIGHT = re.compile(r"(?:体重|weight|重)\s*(\d{2,3})(?![\d斤kgl])", re.I)


@dataclass(frozen=True)
class VariantView:
    size: str
    colour: str
    price_fen: int
    stock: int


@dataclass(frozen=True)
class ProductView:
    external_id: str
    name_zh: str
    name_en: str
    category: str
    material: str | None
    customised: bool
    variants: tuple[VariantView, ...]
    description_zh: str | None = None
    description_en: str | None = None

    def name(self, language: str) -> str:
        return self.name_en if language == "en" else self.name_zh

    def description(self, language: str) -> str:
        return (self.description_en if language == "en" else self.description_zh) or ""

    def colours(self) -> list[str]:
        return list(dict.fromkeys(v.colour for v in self.variants))

    def sizes(self) -> list[str]:
        return list(dict.fromkeys(v.size for v in self.variants))

    def stock(self, colour: str, size: str) -> int | None:
        """Units in stock of one colour and size; None if the product has no such variant."""
        return next((v.stock for v in self.variants if (v.colour, v.size) == (colour, size)), None)

    @property
    def price_range(self) -> tuple[int, int]:
        prices = [v.price_fen for v in self.variants] or [0]
        return min(prices), max(prices)

    def in_stock(self, size: str | None = None, colour: str | None = None) -> list[VariantView]:
        return [
            v
            for v in self.variants
            if v.stock > 0
            and (size is None or v.size.upper() == size.upper())
            and (colour is None or v.colour.lower() == colour.lower())
        ]

    def has(self, size: str | None = None, colour: str | None = None) -> bool:
        return any(
            (size is None or v.size.upper() == size.upper())
            and (colour is None or v.colour.lower() == colour.lower())
            for v in self.variants
        )


def aspects(text: str | None) -> list[str]:
    """What a product question asks about (size, stock, price, material, care), in order."""
    return [name for name, pattern in ASPECTS if text and pattern.search(text)]


def body_measurements(text: str | None) -> tuple[float | None, float | None]:
    """(height in cm, weight in kg) from "175 140斤", "5'10 170 lbs", "身高165 体重50公斤"…"""
    text = text or ""
    height: float | None = None
    weight: float | None = None
    if m := _METRES.search(text):
        height = float(m.group(1).replace("．", ".")) * 100
    elif m := _FEET.search(text):
        height = round(int(m.group(1)) * 30.48 + int(m.group(2) or 0) * 2.54)
    elif m := _CM.search(text):
        height = float(m.group(1))
    if m := _KG.search(text):
        weight = float(m.group(1))
    elif m := _JIN.search(text):
        weight = int(m.group(1)) / 2
    elif m := _LBS.search(text):
        weight = round(int(m.group(1)) * 0.4536, 1)
    elif m := _BARE_WEIGHT.search(text):
        weight = float(m.group(1))
    else:
        # "我175 70": a second bare number after the height is a weight in kg.
        numbers = [int(n) for n in re.findall(r"(?<![\d.])(\d{2,3})(?![\d.])", text)]
        rest = [n for n in numbers if 35 <= n <= 130 and n != height]
        if height is not None and rest:
            weight = float(rest[0])
    return height, weight


def _view(product: Product) -> ProductView:
    return ProductView(
        external_id=product.external_id,
        name_zh=product.name_zh,
        name_en=product.name_en,
        category=product.category,
        material=product.material,
        customised=product.customised,
        variants=tuple(
            VariantView(v.size, v.colour, v.price_fen, v.stock)
            for v in sorted(product.variants, key=lambda v: v.id)
        ),
        description_zh=product.description_zh,
        description_en=product.description_en,
    )


def list_products(*, session: Session, category: str | None = None) -> list[ProductView]:
    """Every product (of one category, if given), in catalogue order."""
    query = select(Product).options(selectinload(Product.variants)).order_by(Product.id)
    if category:
        query = query.where(Product.category == category)
    return [_view(p) for p in session.scalars(query)]


def match_products(*, session: Session, name: str) -> list[ProductView]:
    """Products called ``name`` (Chinese or English): the exact name if there is one, else
    every product whose name contains it ("衬衫" → all the shirts), or that it contains."""
    wanted = name.strip().lower()
    if not wanted:
        return []
    products = session.scalars(
        select(Product).options(selectinload(Product.variants)).order_by(Product.id)
    ).all()
    exact = [p for p in products if wanted in (p.name_zh.lower(), p.name_en.lower())]
    if exact:
        return [_view(exact[0])]
    return [
        _view(p)
        for p in products
        if any(
            wanted in n or (len(n) >= 3 and n in wanted)
            for n in (p.name_zh.lower(), p.name_en.lower())
        )
    ]


def find_product(
    *, session: Session, name: str | None = None, external_id: str | None = None
) -> ProductView | None:
    """The one product named, else the product with the store's ``external_id`` (the page
    the shopper is on). A name that fits several products picks the page's product if it is
    one of them, else none."""
    matches = match_products(session=session, name=name) if name else []
    if len(matches) == 1:
        return matches[0]
    if external_id:
        on_page = session.scalars(
            select(Product)
            .where(Product.external_id == external_id)
            .options(selectinload(Product.variants))
        ).first()
        if on_page is not None and (
            not matches or on_page.external_id in {m.external_id for m in matches}
        ):
            return _view(on_page)
    return None


def size_advice(product: ProductView, text: str | None) -> str | None:
    height, weight = body_measurements(text)
    size = recommend_size(product.category, height, weight)
    if size is None or not product.has(size=size):
        return None
    return size


def recommendations(
    *,
    session: Session,
    product_external_id: str | None = None,
    customer_id: int | None = None,
    limit: int = 3,
) -> list[ProductView]:
    """What to suggest, from the co-purchase rules and best-sellers that the recompute job
    keeps (``bot.services.recommendations``): with a product, what its buyers also bought
    (else its category's best-sellers); for a known customer, what fits their history; else
    the store's best-sellers. Only products with something in stock, never customised ones."""
    from bot.services import recommendations as rec  # it reads the catalogue through here

    wanted = limit * 3  # room for what is out of stock or customised
    if product_external_id:
        picks = rec.also_bought(session=session, product=product_external_id, limit=wanted)
    elif customer_id is not None:
        picks = rec.recommend_for_customer(session=session, customer_id=customer_id, limit=wanted)
    else:
        picks = rec.best_sellers(session=session, limit=wanted)
    return product_views(session=session, external_ids=[p.product for p in picks], limit=limit)


def product_views(
    *, session: Session, external_ids: list[str], limit: int | None = None
) -> list[ProductView]:
    """The products, in the order given, that can be offered: in stock, not customised."""
    products = session.scalars(
        select(Product)
        .where(Product.external_id.in_(external_ids), Product.customised.is_(False))
        .options(selectinload(Product.variants))
    ).all()
    by_id = {p.external_id: _view(p) for p in products}
    views = [by_id[e] for e in external_ids if e in by_id and by_id[e].in_stock()]
    return views[:limit] if limit is not None else views


def care_code(material: str | None) -> str:
    """The care instructions' code for a material (labels in bot/labels.py, kind "care")."""
    text = (material or "").lower()
    for code in ("silk", "wool", "linen", "denim"):
        if code in text:
            return code
    return "cotton"
