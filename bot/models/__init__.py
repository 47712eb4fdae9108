"""ORM models. Importing this package registers every table on ``Base.metadata``."""

from bot.models import console as console  # agent console tables
from bot.models import crm as crm  # CRM tables (import from bot.models.crm)
from bot.models import handoff as handoff  # the handoff tables (import from bot.models.handoff)
from bot.models import lifecycle as lifecycle  # model versions
from bot.models import privacy as privacy  # consent and audit (import from bot.models.privacy)
from bot.models import review as review  # ops review: labels, search index
from bot.models.base import Base
from bot.models.conversation import Conversation, Message, Visitor
from bot.models.service import Coupon, Outcome, Promotion, ServiceRequest
from bot.models.staff import LoginFailure, Staff, StaffSession
from bot.models.store import (
    Customer,
    Order,
    OrderItem,
    Product,
    Shipment,
    ShipmentEvent,
    Variant,
)

__all__ = [
    "Base",
    "Conversation",
    "Coupon",
    "Customer",
    "LoginFailure",
    "Message",
    "Order",
    "OrderItem",
    "Outcome",
    "Product",
    "Promotion",
    "ServiceRequest",
    "Shipment",
    "ShipmentEvent",
    "Staff",
    "StaffSession",
    "Variant",
    "Visitor",
]
