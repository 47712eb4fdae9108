"""Customer 360 over HTTP: the staff session guards it, unknown customers are 404, and the
profile comes back as JSON with every field."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.test_handoff import AgentClient

URL = "/api/agent/customers"
FIELDS = {
    "id",
    "external_id",
    "name",
    "language",
    "membership_level",
    "points",
    "first_contact_at",
    "last_contact_at",
    "conversations",
    "preferred_language",
    "recent_intents",
    "open_issues",
    "satisfaction",
    "sentiment",
    "lifetime_value_fen",
    "rfm",
    "tags",
    "latest_orders",
    "latest_conversations",
    "timeline",
}


def test_the_profile_needs_a_staff_session(client: TestClient) -> None:
    response = client.get(f"{URL}/C00001")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    forged = client.get(f"{URL}/C00001", headers={"cookie": "kefu_staff=forged"})
    assert forged.status_code == 401


def test_an_unknown_customer_is_404(client: TestClient) -> None:
    agent = AgentClient(client, "Lookup")
    response = client.get(f"{URL}/C-NOBODY", headers=agent.headers)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_every_reading_role_gets_the_profile(client: TestClient) -> None:
    for role in ("agent", "supervisor", "ops", "admin"):
        who = AgentClient(client, role.title(), role=role)
        response = client.get(f"{URL}/C00002", headers=who.headers)
        assert response.status_code == 200, (role, response.text)
    profile = response.json()
    assert set(profile) == FIELDS
    assert (profile["external_id"], profile["name"], profile["membership_level"]) == (
        "C00002",
        "Emily Chen",
        "vip",
    )
    assert profile["latest_orders"], "the demo store gives every demo shopper orders"
    order = profile["latest_orders"][0]
    assert set(order) == {
        "order_number",
        "status",
        "total_fen",
        "placed_at",
        "shipment_status",
        "carrier",
        "tracking_number",
        "estimated_at",
    }
    assert isinstance(profile["lifetime_value_fen"], int)
    assert set(profile["satisfaction"]) == {"average", "count"}
    assert set(profile["sentiment"]) == {"recent", "previous", "change"}


def test_the_route_is_in_the_openapi_schema(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"][f"{URL}/{{external_id}}"]["get"]
    assert operation["tags"] == ["customers"]
