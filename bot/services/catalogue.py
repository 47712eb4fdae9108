"""The store's catalogue as pages show it: products with their variants, stock and prices."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from bot.models import Product


@dataclass(frozen=True)
class VariantView:
    sku: str
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
    description_zh: str | None
    description_en: str | None
    variants: tuple[VariantView, ...]

    def name(self, language: str) -> str:
        return self.name_en if language == "en" else self.name_zh

    def description(self, language: str) -> str:
        return (self.description_en if language == "en" else self.description_zh) or ""

    @property
    def min_price_fen(self) -> int:
        return min((v.price_fen for v in self.variants), default=0)

    @property
    def in_stock(self) -> bool:
        return any(v.stock > 0 for v in self.variants)

    def colours(self) -> list[str]:
        return list(dict.fromkeys(v.colour for v in self.variants))

    def sizes(self) -> list[str]:
        return list(dict.fromkeys(v.size for v in self.variants))

    def stock(self, colour: str, size: str) -> int | None:
        """Units in stock of one colour and size; None if the product has no such variant."""
        return next((v.stock for v in self.variants if (v.colour, v.size) == (colour, size)), None)


def _view(product: Product) -> ProductView:
    return ProductView(
        external_id=product.external_id,
        name_zh=product.name_zh,
        name_en=product.name_en,
        category=product.category,
        material=product.material,
        description_zh=product.description_zh,
        description_en=product.description_en,
        variants=tuple(
            VariantView(v.sku, v.size, v.colour, v.price_fen, v.stock)
            for v in sorted(product.variants, key=lambda v: v.id)
        ),
    )


def list_products(*, session: Session, category: str | None = None) -> list[ProductView]:
    """Every product (of one category, if given), in catalogue order."""
    query = select(Product).options(selectinload(Product.variants)).order_by(Product.id)
    if category:
        query = query.where(Product.category == category)
    return [_view(p) for p in session.scalars(query)]


def get_product(*, session: Session, external_id: str) -> ProductView | None:
    """One product by the store's id, or None."""
    product = session.scalars(
        select(Product)
        .options(selectinload(Product.variants))
        .where(Product.external_id == external_id)
    ).first()
    return _view(product) if product else None
