"""The one bilingual catalogue of labels for codes stored in the database.

Actions and pages show ``label("order_status", order.status, "en")``; nothing else spells
these out. Unknown codes come back as the code itself rather than failing a reply.
"""

from __future__ import annotations

from typing import Literal

Kind = Literal[
    "order_status",
    "shipment_status",
    "carrier",
    "delay_reason",
    "colour",
    "category",
    "material",
    "care",
    "region",
    "membership_level",
    "not_eligible",
    "request_status",
    "request_kind",
    "topic",
    "handoff_reason",
    "disposition",
]

LABELS: dict[str, dict[str, tuple[str, str]]] = {
    # code: (zh, en)
    "order_status": {
        "pending_payment": ("待付款", "awaiting payment"),
        "paid": ("已付款，待发货", "paid, awaiting shipment"),
        "shipped": ("已发货", "shipped"),
        "delivered": ("已签收", "delivered"),
        "cancelled": ("已取消", "cancelled"),
        "refunded": ("已退款", "refunded"),
    },
    "shipment_status": {
        "awaiting_pickup": ("待揽收", "waiting for pickup"),
        "picked_up": ("已揽收", "picked up by the courier"),
        "in_transit": ("运输中", "in transit"),
        "out_for_delivery": ("派送中", "out for delivery"),
        "delivered": ("已签收", "delivered"),
        "exception": ("物流异常", "delivery problem"),
    },
    "carrier": {
        "sf": ("顺丰速运", "SF Express"),
        "zto": ("中通快递", "ZTO Express"),
        "yto": ("圆通速递", "YTO Express"),
        "jd": ("京东物流", "JD Logistics"),
        "ems": ("中国邮政EMS", "China Post EMS"),
    },
    "delay_reason": {
        "bad_weather": ("受恶劣天气影响", "bad weather"),
        # English labels are noun phrases: "the delay is due to {reason}".
        "courier_suspension": ("快递公司暂停揽收", "the courier suspending pickups"),
        "peak_season": ("大促期间包裹量激增", "the peak-season surge in parcels"),
        "out_of_stock": ("商品暂时缺货，正在补货", "a temporary stock shortage"),
        "address_issue": ("收货地址需要核实", "a delivery address that needs checking"),
    },
    "colour": {
        "blue": ("蓝色", "blue"),
        "light-blue": ("浅蓝色", "light blue"),
        "navy": ("藏青色", "navy"),
        "white": ("白色", "white"),
        "pink": ("粉色", "pink"),
        "beige": ("米色", "beige"),
        "black": ("黑色", "black"),
        "red": ("红色", "red"),
        "burgundy": ("酒红色", "burgundy"),
        "grey": ("灰色", "grey"),
        "green": ("绿色", "green"),
        "camel": ("驼色", "camel"),
        "khaki": ("卡其色", "khaki"),
        "olive": ("橄榄绿", "olive"),
    },
    "category": {
        "shirt": ("衬衫", "Shirts"),
        "tie": ("领带", "Ties"),
        "jacket": ("外套", "Jackets"),
        "trousers": ("裤装", "Trousers"),
        "underwear": ("内衣", "Underwear"),
    },
    "material": {
        "100% cotton": ("100%纯棉", "100% cotton"),
        "cotton with non-iron finish": ("纯棉免烫处理", "cotton with a non-iron finish"),
        "100% linen": ("100%亚麻", "100% linen"),
        "cotton poplin": ("府绸棉", "cotton poplin"),
        "2-ply cotton": ("双股棉", "2-ply cotton"),
        "cotton piqué": ("珠地棉", "cotton piqué"),
        "100% mulberry silk": ("100%桑蚕丝", "100% mulberry silk"),
        "silk knit": ("真丝针织", "silk knit"),
        "wool blend": ("羊毛混纺", "wool blend"),
        "60% wool, 40% polyester": ("60%羊毛、40%涤纶", "60% wool, 40% polyester"),
        "cotton denim": ("棉质牛仔布", "cotton denim"),
        "cotton gabardine": ("棉华达呢", "cotton gabardine"),
        "stretch cotton twill": ("弹力棉斜纹", "stretch cotton twill"),
        "cotton jersey": ("棉质针织", "cotton jersey"),
        "modal cotton": ("莫代尔棉", "modal cotton"),
    },
    # Care codes (bot.services.products.care_code) -> the care instructions.
    "care": {
        "cotton": (
            "可机洗，建议30℃以下反面洗涤，中温熨烫，避免暴晒",
            "machine wash at 30°C or below inside out, iron on medium, dry out of direct sun",
        ),
        "linen": (
            "建议手洗或轻柔机洗，不可漂白，低温熨烫，亚麻自然褶皱属正常",
            "hand wash or gentle machine wash, no bleach, iron on low; linen creases naturally",
        ),
        "silk": (
            "建议干洗，或冷水手洗后平铺阴干，勿拧干，勿暴晒",
            "dry clean, or hand wash cold and dry flat in the shade; do not wring",
        ),
        "wool": (
            "建议干洗，不可机洗，挂在宽肩衣架上保存，低温蒸汽熨烫",
            "dry clean only, hang on a wide hanger, steam on low",
        ),
        "denim": (
            "首次单独冷水反面洗涤，可能轻微褪色，勿漂白，挂干",
            "wash inside out in cold water on its own at first, it may bleed a little; "
            "no bleach, hang dry",
        ),
    },
    "region": {
        "east": ("江浙沪皖", "Jiangsu, Zhejiang, Shanghai, Anhui"),
        "north": ("京津冀、山东", "Beijing, Tianjin, Hebei, Shandong"),
        "south": ("广东、福建、广西、海南", "Guangdong, Fujian, Guangxi, Hainan"),
        "central": ("湖北、湖南、河南、江西", "Hubei, Hunan, Henan, Jiangxi"),
        "southwest": ("四川、重庆、云南、贵州", "Sichuan, Chongqing, Yunnan, Guizhou"),
        "northeast": ("东北三省", "the north-east"),
        "northwest": ("西北及新疆、西藏", "the north-west, Xinjiang and Tibet"),
    },
    "membership_level": {
        "regular": ("普通会员", "Regular member"),
        "silver": ("白银会员", "Silver member"),
        "gold": ("黄金会员", "Gold member"),
        "vip": ("VIP会员", "VIP member"),
    },
    # Why a return or exchange is not possible (bot.services.returns).
    "not_eligible": {
        "not_delivered": (
            "订单还没有签收，签收后才能申请退换货",
            "the order hasn't been delivered yet; returns open once it arrives",
        ),
        "window_passed": (
            "已超过签收后7天无理由退换的期限",
            "it is past the 7 days after delivery for a no-reason return",
        ),
        "excluded_category": (
            "贴身衣物出于卫生原因不支持7天无理由退换",
            "underwear can't be returned without a reason, for hygiene reasons",
        ),
        "customised": (
            "定制商品不支持7天无理由退换",
            "made-to-order goods can't be returned without a reason",
        ),
        "already_requested": (
            "这件商品已经有一个处理中的退换申请",
            "there is already an open return or exchange for this item",
        ),
        "order_closed": ("订单已取消或已退款", "the order has been cancelled or refunded"),
        "no_such_variant": ("没有您要的尺码或颜色", "that size or colour doesn't exist"),
        "out_of_stock": ("您要换的款式暂时缺货", "the one you want is out of stock"),
    },
    "request_status": {
        "requested": ("已提交，等待审核", "submitted, waiting for review"),
        "approved": ("已审核通过，请寄回商品", "approved, please send the item back"),
        "received": ("仓库已收到退货，正在处理", "received at our warehouse, being processed"),
        "refunded": ("已退款", "refunded"),
        "exchanged": ("新商品已发出", "the replacement has shipped"),
        "rejected": ("未通过审核", "declined"),
    },
    "request_kind": {
        "return": ("退货退款", "return and refund"),
        "exchange": ("换货", "exchange"),
    },
    # Intents as topics, for the "did you mean" buttons of a low-confidence message.
    "topic": {
        "order_status": ("查询订单物流", "Where my order is"),
        "shipping_delay": ("发货/物流延迟", "A late delivery"),
        "shipping_info": ("运费与配送", "Shipping costs and times"),
        "cancel_order": ("取消订单", "Cancel an order"),
        "modify_order": ("修改订单", "Change an order"),
        "return_refund": ("退货退款", "Return or refund"),
        "exchange": ("换货", "Exchange an item"),
        "product_question": ("商品咨询", "A product question"),
        "product_recommendation": ("商品推荐", "Recommendations"),
        "coupon_promotion": ("优惠活动", "Discounts and coupons"),
        "payment_issue": ("支付问题", "Payment"),
        "invoice": ("发票", "Invoices"),
        "membership_points": ("会员与积分", "Membership and points"),
        "complaint": ("投诉与建议", "A complaint"),
        "human_agent": ("转人工客服", "Talk to a person"),
    },
    # Why a conversation went to a person (bot.models.handoff.Handoff.reason, before any
    # ":detail"); English labels are noun phrases for the agent console.
    "handoff_reason": {
        "requested": ("顾客要求转人工", "the shopper asked for a person"),
        "fallback": ("连续两次没听懂", "two misunderstandings in a row"),
        "complaint": ("投诉", "a complaint"),
        "angry_complaint": ("情绪激烈的投诉", "a strongly negative complaint"),
        "vip": ("VIP 顾客遇到问题", "a VIP with a problem"),
        "takeover": ("客服主动接入", "an agent took over"),
    },
    # How an agent closed a conversation (bot.models.handoff.DISPOSITIONS).
    "disposition": {
        "resolved": ("已解决", "Resolved"),
        "unresolved": ("未解决", "Not resolved"),
        "follow_up": ("待跟进", "Follow up"),
        "spam": ("垃圾消息", "Spam"),
        "duplicate": ("重复会话", "Duplicate"),
    },
}

LANGUAGES = ("zh", "en")


def label(kind: Kind, code: str | None, language: str) -> str:
    """The label of ``code`` in ``language`` ("zh" or "en"; anything else means "zh")."""
    if code is None:
        return ""
    pair = LABELS[kind].get(code)
    if pair is None:
        return code
    return pair[1] if language == "en" else pair[0]


def codes(kind: Kind) -> tuple[str, ...]:
    """All codes known for ``kind`` (used by the seed and by validation)."""
    return tuple(LABELS[kind])
