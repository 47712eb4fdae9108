"""Finding and masking personal data (bot.privacy.masking), with examples of our own."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.models import Customer, Order, Shipment
from bot.privacy.masking import (
    Span,
    StoreIdLookup,
    find,
    fold,
    luhn,
    mask,
    masker_for_session,
    valid_resident_id,
)
from bot.privacy.views import for_role, records_for_role, sees_raw

WIDE = str.maketrans("0123456789-+@X ", "０１２３４５６７８９－＋＠Ｘ\u3000")


def wide(text: str) -> str:
    return text.translate(WIDE)


def kinds(text: str) -> list[str]:
    return [s.kind for s in find(text)]


def resident_id(first17: str) -> str:
    weights = [2 ** (17 - i) % 11 for i in range(17)]
    check = (12 - sum(int(d) * w for d, w in zip(first17, weights, strict=True)) % 11) % 11
    return first17 + ("X" if check == 10 else str(check))


def with_luhn(prefix: str) -> str:
    for last in "0123456789":
        if luhn(prefix + last):
            return prefix + last
    raise AssertionError


# --- phones ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "我的手机13812345678",
        "电话 138 1234 5678 谢谢",
        "call 138-1234-5678 please",
        "+86 138 1234 5678",
        "+8613812345678",
        "0086-13812345678",
        "86 13812345678",
        "手机：１３８１２３４５６７８",
        "手机：１３８ 1234 ５６７８",  # mixed widths
        "手机＋８６　１３８－１２３４－５６７８",
        "号码是一三八一二三四五六七八",
        "打013812345678",
    ],
)
def test_mobile_numbers_are_masked_to_the_first_three_and_last_four(text: str) -> None:
    assert kinds(text) == ["phone"]
    assert "138****5678" in mask(text)
    assert "1234" not in mask(text) and "１２３４" not in mask(text)


def test_span_offsets_are_offsets_in_the_original_text_of_either_width() -> None:
    for text in ("联系 13912345678 吧", wide("联系 13912345678 吧")):
        (span,) = find(text)
        assert span == Span("phone", 3, 14)
        assert fold(text[span.start : span.end]) == "13912345678"


@pytest.mark.parametrize(
    "text",
    [
        "订单号 512345678901 到哪了",  # 12 digits: not a phone
        "12812345678",  # 128 is no mobile prefix
        "金额 1380.00 元",
        "日期 2026-11-20 13:45",
        "尺码 175/92A，数量 2",
        "1381234567",  # ten digits
        "SKU P-OXF-138",
    ],
)
def test_other_numbers_are_left_alone(text: str) -> None:
    assert find(text) == []
    assert mask(text) == text


def test_two_numbers_next_to_each_other_are_two_phones() -> None:
    assert kinds("13812345678 13987654321") == ["phone", "phone"]
    assert mask("13812345678 13987654321") == "138****5678 139****4321"


# --- landlines -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("座机 010-62345678", "座机 010-****5678"),
        ("座机 021 6234 5678", "座机 021-****5678"),
        ("tel (0755) 8888 9999", "tel 0755-****9999"),
        ("tel +86 21 6234 5678", "tel 021-****5678"),
        ("座机０５７１－８７６５４３２１", "座机0571-****4321"),
    ],
)
def test_landlines_keep_the_area_code(text: str, masked: str) -> None:
    assert kinds(text) == ["landline"]
    assert mask(text) == masked


def test_service_numbers_are_not_landlines() -> None:
    assert find("客服热线 400-820-8820 或 95588") == []


# --- resident ID numbers ---------------------------------------------------------------------


def test_resident_id_checksum() -> None:
    assert valid_resident_id("11010519491231002X")
    assert valid_resident_id(resident_id("44030619900307341"))
    assert not valid_resident_id("110105194912310021")  # wrong check character
    assert not valid_resident_id(resident_id("44030619901307341"))  # month 13


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_valid_id_numbers_are_masked_invalid_ones_are_not(lang: str) -> None:
    valid = resident_id("32058219851123123")
    label = "[身份证]" if lang == "zh" else "[ID number]"
    assert mask(f"ID {valid}", lang=lang) == f"ID {label}"
    assert mask(f"ID {wide(valid)}", lang=lang) == f"ID {label}"
    wrong = valid[:17] + str((int(valid[17]) + 1) % 10 if valid[17] != "X" else 0)
    assert find(f"ID {wrong}") == []
    lower_x = resident_id("11010519491231002")
    assert lower_x.endswith("X")
    assert kinds(f"身份证号{lower_x.lower()}。") == ["id_card"]


def test_grouped_id_number() -> None:
    valid = resident_id("44030619900307341")
    grouped = f"{valid[:6]} {valid[6:14]} {valid[14:]}"
    assert mask(f"身份证 {grouped}") == "身份证 [身份证]"


# --- bank cards ------------------------------------------------------------------------------


def test_cards_pass_luhn_in_any_grouping_and_width() -> None:
    card = with_luhn("622202123456789012")  # 19 digits
    for written in (
        card,
        " ".join(card[i : i + 4] for i in range(0, 19, 4)),
        "-".join(card[i : i + 4] for i in range(0, 19, 4)),
        wide(card),
    ):
        assert kinds(f"卡号{written}") == ["bank_card"], written
        assert mask(f"卡号{written}") == f"卡号[银行卡 尾号{card[-4:]}]"
    assert mask("card 4111 1111 1111 1111") == "card [card ending 1111]"


def test_luhn_failures_are_not_cards() -> None:
    assert find("card 4111 1111 1111 1112") == []
    card = with_luhn("622848001234567")
    broken = card[:-1] + str((int(card[-1]) + 5) % 10)
    assert find(broken) == []


# --- e-mail ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("邮箱 zhang.wei@qq.com 谢谢", "邮箱 z***@qq.com 谢谢"),
        ("mail emily_chen+shop@mail.example.co.uk.", "mail e***@mail.example.co.uk."),
        ("邮箱１３８１２３４５６７８＠163.com", "邮箱1***@163.com"),
        ("write to john (at) example (dot) com", "write to j***@example.com"),
    ],
)
def test_email_addresses(text: str, masked: str) -> None:
    assert kinds(text) == ["email"]  # the digits inside belong to the e-mail
    assert mask(text) == masked


def test_an_at_sign_alone_is_not_an_email() -> None:
    assert find("@客服 你好，price @ 99 yuan") == []


# --- addresses -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "请寄到上海市浦东新区张江路88号3栋502室",
        "地址：北京市朝阳区建国路88号",
        "浙江省杭州市西湖区文三路 123 号",
        "改到广州市天河区体育西路191号中石化大厦B座2201",
        "阳光小区3号楼2单元501室",
        "南京市鼓楼区中山北路1088弄7号",
        "成都市武侯区人民南路四段",
    ],
)
def test_chinese_addresses(text: str) -> None:
    assert kinds(text) == ["address"]
    assert "[地址]" in mask(text)
    assert not any(ch.isdigit() for ch in fold(mask(text)))


def test_chinese_address_keeps_the_words_around_it() -> None:
    assert mask("请寄到上海市浦东新区张江路88号，谢谢") == "请寄到[地址]，谢谢"


@pytest.mark.parametrize(
    "text",
    [
        "11月3号能到吗",
        "我在上海市浦东新区",
        "寄到北京了吗",
        "杭州转运中心已发出",
        "这款衬衫有3层包装吗",
        "我住在南京路附近",
    ],
)
def test_places_without_a_street_address_are_not_addresses(text: str) -> None:
    assert find(text) == []


@pytest.mark.parametrize(
    "text",
    [
        "Ship to Room 1203, 88 Century Avenue, Pudong New Area, Shanghai 200120 please",
        "I live at 12 Oak Street, Springfield",
        "send it to 221B Baker St., London",
        "Apt 4B, 350 Fifth Avenue, New York",
        "Lane 100, Zhangjiang Road, Pudong",
        "No. 18 Zhongshan Lu, Nanjing",
    ],
)
def test_english_addresses(text: str) -> None:
    assert kinds(text) == ["address"]
    assert "[address]" in mask(text)


@pytest.mark.parametrize(
    "text",
    [
        "2 items on the way",
        "I bought 3 blue shirts and a red tie",
        "Is the 42 size ok for Dr Martens?",
        "Order 512345678901 shipped 2 days ago",
    ],
)
def test_english_text_without_addresses(text: str) -> None:
    assert find(text) == []


# --- several at once, labels -----------------------------------------------------------------


def test_a_message_with_everything() -> None:
    card = with_luhn("621700001234567890")
    text = (
        f"我叫张三，手机13912345678，邮箱zs@example.com，卡号{card}，"
        "寄到上海市徐汇区漕溪北路398号，订单512345678901"
    )
    assert kinds(text) == ["phone", "email", "bank_card", "address"]
    assert mask(text) == (
        f"我叫张三，手机139****5678，邮箱z***@example.com，卡号[银行卡 尾号{card[-4:]}]，"
        "寄到[地址]，订单512345678901"
    )


def test_label_language_follows_the_text_unless_given() -> None:
    assert mask("address: 12 Oak Street") == "address: [address]"
    assert mask("地址 12 Oak Street") == "地址 [地址]"
    assert mask("12 Oak Street", lang="zh") == "[地址]"


def test_empty_and_plain_text() -> None:
    assert mask("") == ""
    assert mask("你好，我的订单到哪了？") == "你好，我的订单到哪了？"


# --- the store's own numbers stay readable ---------------------------------------------------


def test_injected_known_ids_exempt_store_numbers_by_look_up() -> None:
    asked: list[set[str]] = []

    def known(candidates: set[str]) -> set[str]:
        asked.append(candidates)
        return candidates & {"13812345678"}

    text = "订单13812345678，我的电话13987654321"
    assert mask(text, known_ids=known) == "订单13812345678，我的电话139****4321"
    assert asked and {"13812345678", "13987654321"} <= asked[0]


def test_tracking_numbers_are_looked_up_with_their_letters() -> None:
    text = "运单 SF13812345678 到哪了"
    assert mask(text) == "运单 SF138****5678 到哪了"
    assert mask(text, known_ids=lambda c: c & {"SF13812345678"}) == text


def test_seeded_order_numbers_stay_readable(session: Session) -> None:
    numbers = session.scalars(select(Order.order_number).limit(5)).all()
    masker = masker_for_session(session)
    for number in numbers:
        text = f"订单{number}什么时候到？电话13812345678"
        assert masker.mask(text) == f"订单{number}什么时候到？电话138****5678"


def test_store_numbers_shaped_like_personal_data_are_exempt(session: Session) -> None:
    """An order number that looks like a phone number and a tracking number that passes
    Luhn: masked by shape, left alone once the store knows them."""
    card_like = with_luhn("622202123456789")
    customer = session.scalars(select(Customer).limit(1)).one()
    now = datetime(2026, 11, 20, tzinfo=timezone.utc)
    order = Order(
        order_number="13700001111",
        customer_id=customer.id,
        status="shipped",
        total_fen=100,
        phone="13900000000",
        address="x",
        placed_at=now,
    )
    session.add(order)
    session.flush()
    session.add(
        Shipment(
            order_id=order.id,
            carrier="sf",
            tracking_number=card_like,
            status="in_transit",
            promised_at=now,
        )
    )
    session.flush()
    text = f"订单13700001111，运单{card_like}，手机13700002222"
    assert mask(text) == f"订单137****1111，运单[银行卡 尾号{card_like[-4:]}]，手机137****2222"
    lookup = StoreIdLookup(session)
    assert mask(text, known_ids=lookup) == f"订单13700001111，运单{card_like}，手机137****2222"
    # Answers are cached: the second time asks the database nothing new.
    cached = dict(lookup._cache)
    assert cached["13700001111"] is True and cached["13700002222"] is False
    assert mask(text, known_ids=lookup) == f"订单13700001111，运单{card_like}，手机137****2222"
    assert lookup._cache == cached


# --- edges: wrapped numbers, names between address parts, postcodes --------------------------


def test_a_card_number_wrapped_over_a_line_is_one_card() -> None:
    card = with_luhn("436742001234567")
    text = f"卡号 {card[:8]}\n{card[8:]} 谢谢"
    assert kinds(text) == ["bank_card"]
    assert "\n" not in mask(text)
    # Two phone numbers on two lines stay two phones.
    assert kinds("13812345678\n13987654321") == ["phone", "phone"]


def test_dates_and_handles_are_not_addresses_or_emails() -> None:
    assert find("2026-11-20 下单的") == []
    assert find("follow us on instagram @kefu.shop") == []
    assert kinds("write to kefu @ example.com") == ["email"]


@pytest.mark.parametrize(
    "text",
    [
        "深圳市南山区深南大道9668号华润城二期5栋12F",
        "北京市朝阳区东三环中路1号环球金融大厦东塔27层2701",
        "天津市和平区南京道88号",
    ],
)
def test_an_address_is_masked_whole_even_with_a_name_inside(text: str) -> None:
    assert mask(text) == "[地址]"


@pytest.mark.parametrize(
    "text",
    [
        "Flat 2, 10 Park Grove, Leeds LS6 2AB",
        "100 King Street West, Toronto, ON M5X 1A9",
        "5 Smith Street, Sydney NSW 2000",
    ],
)
def test_english_addresses_with_postcodes_are_masked_whole(text: str) -> None:
    assert mask(text) == "[address]"


# --- role views ------------------------------------------------------------------------------


def test_roles_that_handle_live_chats_see_text_as_written_others_masked() -> None:
    text = "电话13812345678，订单512345678901"
    for role in ("agent", "supervisor"):
        assert sees_raw(role) and for_role(role, text) == text
    for role in ("ops", "admin", "export", "log", "intern", ""):
        assert not sees_raw(role)
        assert for_role(role, text) == "电话138****5678，订单512345678901"
    rows = [{"id": 1, "text": text, "role": "shopper"}, {"id": 2, "text": None}]
    masked = records_for_role("ops", rows)
    assert masked[0] == {"id": 1, "text": "电话138****5678，订单512345678901", "role": "shopper"}
    assert masked[1] == {"id": 2, "text": None}
    assert rows[0]["text"] == text  # the input is not changed


def test_role_views_keep_store_numbers_readable(session: Session) -> None:
    text = "运单13700001111"
    assert for_role("export", text) == "运单137****1111"
    assert for_role("export", text, known_ids=lambda c: c & {"13700001111"}) == text
    lookup = StoreIdLookup(session)
    assert for_role("ops", "13812345678", known_ids=lookup) == "138****5678"
