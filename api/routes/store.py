"""The demo store: a small bilingual shop front for the seeded apparel catalogue.

It stands in for a real store that embeds Kefu: every page carries the chat widget with one
script tag, passes the product being viewed as page context, and — like a real store's
backend — issues the signed customer token of whoever is logged in to the store. The log-in
switch lets a tester be any seeded customer; it is off in production (``KEFU_DEMO_STORE``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.db import in_db
from bot.errors import NotFound
from bot.formatting import format_money
from bot.identity import issue_customer_token
from bot.labels import codes, label
from bot.services import customers, products
from bot.services.customers import CustomerListing
from bot.settings import Settings

router = APIRouter(tags=["store"], include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))
templates.env.globals.update(label=label, money=format_money)

CUSTOMER_COOKIE = "kefu_demo_customer"
LANGUAGE_COOKIE = "kefu_demo_lang"
STORE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'"
)

TEXT: dict[str, tuple[str, str]] = {
    # key: (zh, en)
    "shop": ("蓝衫男装旗舰店", "Bluecoat Menswear"),
    "all": ("全部商品", "All products"),
    "sold_out": ("已售罄", "Sold out"),
    "in_stock": ("有货", "In stock"),
    "colour": ("颜色", "Colour"),
    "size": ("尺码", "Size"),
    "stock": ("库存", "Stock"),
    "material": ("面料", "Material"),
    "price": ("价格", "Price"),
    "back": ("返回商品列表", "Back to all products"),
    "logged_in_as": ("当前登录", "Logged in as"),
    "guest": ("游客（未登录）", "Guest (not logged in)"),
    "log_in_as": ("以顾客身份登录", "Log in as customer"),
    "log_in": ("登录", "Log in"),
    "log_out": ("退出登录", "Log out"),
    "demo_note": (
        "演示商店：右下角的客服窗口就是 Kefu。",
        "Demo store: the chat button at the bottom right is Kefu.",
    ),
    "not_found": ("没有找到这件商品。", "We could not find that product."),
    "switch_language": ("English", "中文"),
    "units": ("件", "left"),
}


def text(key: str, language: str) -> str:
    zh, en = TEXT[key]
    return en if language == "en" else zh


def store_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


StoreSettings = Annotated[Settings, Depends(store_settings)]


def _language(request: Request) -> str:
    asked = request.query_params.get("lang") or request.cookies.get(LANGUAGE_COOKIE)
    return "en" if asked == "en" else "zh"


async def _logged_in(request: Request) -> CustomerListing | None:
    external_id = request.cookies.get(CUSTOMER_COOKIE)
    if not external_id:
        return None
    found: CustomerListing | None = await in_db(
        lambda s: customers.customer_by_external_id(session=s, external_id=external_id)
    )
    return found


async def _render(
    request: Request,
    settings: Settings,
    template: str,
    *,
    page: dict[str, Any],
    status: int = 200,
    **context: Any,
) -> Response:
    language = _language(request)
    who = await _logged_in(request)
    switch: list[CustomerListing] = await in_db(lambda s: customers.list_customers(session=s))
    widget = {
        "store": "demo",
        "lang": language,
        "customer-token": (
            issue_customer_token(who.external_id, key=settings.store_token_secret) if who else ""
        ),
        "page": json.dumps(page, ensure_ascii=False),
    }
    response = templates.TemplateResponse(
        request,
        template,
        {
            "lang": language,
            "t": lambda key: text(key, language),
            "who": who,
            "switch": switch,
            "widget": widget,
            "categories": codes("category"),
            **context,
        },
        status_code=status,
    )
    response.headers["Content-Security-Policy"] = STORE_CSP
    response.headers["Cache-Control"] = "no-store"
    if request.query_params.get("lang") in ("zh", "en"):
        response.set_cookie(LANGUAGE_COOKIE, language, samesite="lax", max_age=365 * 86400)
    return response


def _require_demo(settings: Settings) -> None:
    if not settings.demo_store:
        raise NotFound("the demo store is off")


@router.get("/", response_class=HTMLResponse)
async def shop_front(request: Request, settings: StoreSettings) -> Response:
    if not settings.demo_store:
        return JSONResponse({"name": "Kefu", "widget": "/widget.js", "docs": "/docs"})
    category = request.query_params.get("category")
    category = category if category in codes("category") else None
    listed = await in_db(lambda s: products.list_products(session=s, category=category))
    return await _render(
        request,
        settings,
        "store/index.html",
        page={"type": "catalogue", "category": category, "path": request.url.path},
        products=listed,
        category=category,
    )


@router.get("/p/{external_id}", response_class=HTMLResponse)
async def product_page(request: Request, external_id: str, settings: StoreSettings) -> Response:
    _require_demo(settings)
    product = await in_db(lambda s: products.find_product(session=s, external_id=external_id[:64]))
    if product is None:
        return await _render(
            request, settings, "store/missing.html", page={"type": "missing"}, status=404
        )
    return await _render(
        request,
        settings,
        "store/product.html",
        page={
            "type": "product",
            "product_id": product.external_id,
            "product_name": product.name(_language(request)),
            "path": request.url.path,
        },
        product=product,
    )


def _back(request: Request) -> str:
    # Only a path on this site, never an outside address.
    target = request.headers.get("referer", "/")
    path = "/" + target.split("://", 1)[-1].split("/", 1)[-1] if "://" in target else "/"
    return path if path.startswith("/") and not path.startswith("//") else "/"


@router.post("/store/login")
async def store_log_in(
    request: Request,
    settings: StoreSettings,
    customer: Annotated[str, Form(max_length=64)],
) -> Response:
    _require_demo(settings)
    found = await in_db(
        lambda s: customers.customer_by_external_id(session=s, external_id=customer.strip())
    )
    response = RedirectResponse(_back(request), status_code=303)
    if found is not None:
        response.set_cookie(CUSTOMER_COOKIE, found.external_id, httponly=True, samesite="lax")
    return response


@router.post("/store/logout")
async def store_log_out(request: Request, settings: StoreSettings) -> Response:
    _require_demo(settings)
    response = RedirectResponse(_back(request), status_code=303)
    response.delete_cookie(CUSTOMER_COOKIE)
    return response
