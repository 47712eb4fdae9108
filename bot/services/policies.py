"""The store's service policies as plain data: shipping (from settings), the size chart,
membership benefits. Words shown to shoppers live in domain.yml and bot/labels.py."""

from __future__ import annotations

from dataclasses import dataclass

from bot.settings import Settings, get_settings

# Letter sizes by height (cm) and weight (kg): the first row that fits both.
TOP_SIZE_CHART: tuple[tuple[str, int, int], ...] = (
    ("S", 167, 58),
    ("M", 172, 65),
    ("L", 177, 73),
    ("XL", 182, 82),
    ("XXL", 999, 999),
)
# Trouser waist sizes by weight (kg).
TROUSER_SIZE_CHART: tuple[tuple[str, int], ...] = (
    ("29", 58),
    ("30", 62),
    ("31", 66),
    ("32", 70),
    ("33", 75),
    ("34", 80),
    ("36", 999),
)
# Per membership level: discount on full-price goods (percent), points per yuan spent.
MEMBER_BENEFITS: dict[str, tuple[int, int]] = {
    "regular": (0, 1),
    "silver": (3, 1),
    "gold": (5, 2),
    "vip": (8, 3),
}


@dataclass(frozen=True)
class ShippingPolicy:
    fee_fen: int
    free_threshold_fen: int
    carriers: tuple[str, ...]
    delivery_days: tuple[tuple[str, str], ...]  # (region code, "1-2")


def shipping_policy(settings: Settings | None = None) -> ShippingPolicy:
    s = settings or get_settings()
    return ShippingPolicy(
        fee_fen=s.shipping_fee_fen,
        free_threshold_fen=s.free_shipping_threshold_fen,
        carriers=tuple(s.shipping_carriers),
        delivery_days=tuple(s.delivery_days_by_region.items()),
    )


def recommend_size(category: str, height_cm: float | None, weight_kg: float | None) -> str | None:
    """The size chart's answer for a height and/or weight; None if it cannot say."""
    if category == "tie":
        return "F"
    if category == "trousers":
        if weight_kg is None:
            return None
        return next(size for size, max_kg in TROUSER_SIZE_CHART if weight_kg <= max_kg)
    if height_cm is None and weight_kg is None:
        return None
    sizes = [size for size, _, _ in TOP_SIZE_CHART]
    by_height = next(
        (i for i, (_, h, _) in enumerate(TOP_SIZE_CHART) if height_cm is None or height_cm <= h),
        len(sizes) - 1,
    )
    by_weight = next(
        (i for i, (_, _, w) in enumerate(TOP_SIZE_CHART) if weight_kg is None or weight_kg <= w),
        len(sizes) - 1,
    )
    return sizes[max(by_height, by_weight)]


def member_benefits(level: str) -> tuple[int, int]:
    """(discount percent, points per yuan) for a membership level."""
    return MEMBER_BENEFITS.get(level, MEMBER_BENEFITS["regular"])
