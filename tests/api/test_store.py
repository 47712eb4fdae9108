"""The demo store's pages and the widget script, served by the API."""

from __future__ import annotations

import html
import json
import re

import httpx
from fastapi.testclient import TestClient

from api.main import create_app
from bot.identity import verify_customer_token
from bot.settings import Settings
from tests.api.conftest import FakeEngine


def _widget_config(page: str) -> dict[str, str]:
    tag = re.search(r'<script src="/widget.js"(.*?)></script>', page, re.S)
    assert tag, "every store page carries the widget"
    return {k: html.unescape(v) for k, v in re.findall(r'data-([a-z-]+)="([^"]*)"', tag.group(1))}


def test_catalogue_in_both_languages_with_the_widget(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "牛津纺衬衫" in page.text and "海军蓝西装外套" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    config = _widget_config(page.text)
    assert config["lang"] == "zh" and config["customer-token"] == ""
    assert json.loads(config["page"])["type"] == "catalogue"

    english = client.get("/?lang=en")
    assert "Oxford shirt" in english.text and "牛津纺衬衫" not in english.text
    # The choice sticks.
    assert "Navy blazer" in client.get("/?category=jacket").text
    assert "Oxford shirt" not in client.get("/?category=jacket").text


def test_product_page_shows_stock_and_passes_the_product_as_context(client: TestClient) -> None:
    page = client.get("/p/P-OXF?lang=zh")
    assert page.status_code == 200
    assert "100%纯棉" in page.text and "¥199.00" in page.text
    assert "蓝色" in page.text and ">XXL<" in page.text
    config = _widget_config(page.text)
    assert json.loads(config["page"])["product_id"] == "P-OXF"
    assert client.get("/p/NOPE").status_code == 404


def test_store_login_switch_issues_a_signed_customer_token(client: TestClient) -> None:
    assert client.post("/store/login", data={"customer": "C00002"}).status_code == 200
    page = client.get("/").text
    assert "Emily Chen" in page
    token = _widget_config(page)["customer-token"]
    assert verify_customer_token(token, key="s").external_id == "C00002"
    # A customer the store does not have is no log-in.
    client.post("/store/logout")
    client.post("/store/login", data={"customer": "C99999"})
    assert _widget_config(client.get("/").text)["customer-token"] == ""


def test_widget_script_is_cached_and_revalidated(client: TestClient) -> None:
    first = client.get("/widget.js")
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("text/javascript")
    assert "max-age=300" in first.headers["cache-control"]
    again = client.get("/widget.js", headers={"if-none-match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    # The widget never turns message text into HTML.
    assert "innerHTML" not in first.text and "insertAdjacentHTML" not in first.text


def test_demo_store_is_off_in_production_setups(app_db: str, engine: FakeEngine) -> None:
    settings = Settings(
        database_url=app_db,
        secret_key="k",
        store_token_secret="s",
        environment="test",
        demo_store=False,
    )
    app = create_app(settings, engine_transport=httpx.MockTransport(engine.handler))
    with TestClient(app) as off:
        assert off.get("/").json()["widget"] == "/widget.js"
        assert off.get("/p/P-OXF").status_code == 404
        assert off.post("/store/login", data={"customer": "C00001"}).status_code == 404
        assert off.get("/widget.js").status_code == 200
    production = Settings(environment="production", secret_key="a", store_token_secret="b")
    assert production.demo_store is False
