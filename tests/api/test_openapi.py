"""openapi.json: describes every route the server has, loads in schemathesis, is served as JSON."""

from __future__ import annotations

import schemathesis
from ibpanel.api.openapi import openapi_document
from ibpanel.api.schemas import CONNECT_FIELDS, ORDER_FIELDS
from ibpanel.api.security import SecurityPolicy
from ibpanel.api.server import build_app


def _server_routes(broker) -> set[tuple[str, str]]:
    app = build_app(broker, SecurityPolicy(bind_host="127.0.0.1"))
    routes = set()
    for route in app.router.routes():
        if route.method in ("HEAD", "OPTIONS"):
            continue
        path = route.resource.canonical.replace("{order_id}", "{orderId}")
        routes.add((route.method.lower(), path))
    return routes


async def test_every_route_is_documented_and_nothing_else(broker):
    document = openapi_document()
    documented = {(method, path) for path, item in document["paths"].items() for method in item}
    assert documented == _server_routes(broker)


def test_document_is_valid_for_schemathesis_and_complete():
    document = openapi_document()
    assert document["openapi"].startswith("3.1")
    schema = schemathesis.openapi.from_dict(document)
    labels = {result.ok().label for result in schema.get_all_operations()}
    assert "POST /api/ibkr/order" in labels and "DELETE /api/ibkr/order/{orderId}" in labels
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert "200" in responses and "500" in responses and "421" in responses, (method, path)
            body = operation.get("requestBody")
            if body is not None:
                schema_of_body = body["content"]["application/json"]["schema"]
                # Extra fields are refused by the server, so the document says so.
                assert schema_of_body["additionalProperties"] is False
                assert "415" in responses and "413" in responses


def test_bodies_come_from_the_validating_specs():
    paths = openapi_document()["paths"]
    order = paths["/api/ibkr/order"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert list(order["properties"]) == [f.name for f in ORDER_FIELDS]
    assert order["required"] == ["symbol", "side", "quantity"]
    connect = paths["/api/ibkr/connect"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert connect["properties"]["port"]["default"] == 7497
    assert list(connect["properties"]) == [f.name for f in CONNECT_FIELDS]


async def test_served_at_its_documented_path(api):
    status, body = await api.get("openapi.json")
    assert status == 200
    assert body["servers"] == [{"url": f"http://127.0.0.1:{api.handle.port}"}]
    assert {**body, "servers": None} == {**openapi_document(), "servers": None}
