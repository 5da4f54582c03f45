"""/openapi.json is generated from the models the handlers parse and write: every operation is there with
its models, the settings kinds in full, and what the models refuse is refused over HTTP, never a 5xx.
/docs shows it to people from assets served here."""

from __future__ import annotations

import re
from typing import Any, Iterator

import pytest
import tornado.web

from bot.app import API_ROUTES
from distribution.errors import Conflict, Forbidden, Invalid, NotFound, Refused, Unavailable
from distribution.records import InvalidField
from miniapp_api.requests import ProfileChange
from services.merchant_settings import SETTINGS_KINDS
from tests.conftest import MERCHANT_TOKEN
from tests.test_miniapp_session import auth, login
from tests.test_relations import add_member
from web.base import error_detail, error_status
from web.openapi import METHODS, build_document, openapi_path, operations
from wechat import WeChatError

MERCHANT = {"Authorization": f"Bearer {MERCHANT_TOKEN}"}
HUGE = 10**20


@pytest.fixture(scope="module")
def document() -> dict:
    return build_document(API_ROUTES)


def schema_named(document: dict, reference: dict) -> dict:
    return document["components"]["schemas"][reference["$ref"].rsplit("/", 1)[-1]]


def subschemas(value: Any) -> Iterator[dict]:
    if isinstance(value, dict):
        yield value
        for each in value.values():
            yield from subschemas(each)
    elif isinstance(value, list):
        for each in value:
            yield from subschemas(each)


def schema_tree(document: dict, schema: dict) -> Iterator[dict]:
    """`schema` and every schema inside it (properties, items, branches), following references."""
    seen: set[str] = set()
    waiting = [schema]
    while waiting:
        each = waiting.pop()
        if "$ref" in each:
            name = each["$ref"].rsplit("/", 1)[-1]
            if name not in seen:
                seen.add(name)
                waiting.append(document["components"]["schemas"][name])
            continue
        yield each
        for key in ("properties", "patternProperties"):
            waiting += each.get(key, {}).values()
        waiting += [each[key] for key in ("items", "additionalProperties") if isinstance(each.get(key), dict)]
        for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
            waiting += each.get(key, [])


def implemented(handler: type[tornado.web.RequestHandler]) -> list[str]:
    return [method for method in METHODS
            if getattr(handler, method) is not getattr(tornado.web.RequestHandler, method)]


# --- the document ----------------------------------------------------------------------------------


def test_every_route_method_is_an_operation_with_its_models_referenced(document):
    for pattern, handler in API_ROUTES:
        declared = operations(handler)
        assert set(declared) == set(implemented(handler)), handler.__name__
        for method, operation in declared.items():
            described = document["paths"][openapi_path(pattern)][method]
            if operation.body is not None:
                body = described["requestBody"]["content"]["application/json"]["schema"]
                assert schema_named(document, body)["title"] == operation.body.__name__
            if operation.query is not None:
                in_query = {p["name"] for p in described["parameters"] if p["in"] == "query"}
                assert in_query == {field.alias or name for name, field in operation.query.model_fields.items()}
            for status, reply in operation.responses.items():
                if reply.model is not None:
                    answer = described["responses"][str(status)]["content"]["application/json"]["schema"]
                    assert schema_named(document, answer)["title"] == reply.model.__name__
            errors = [status for status in described["responses"] if status.startswith(("4", "5"))]
            for status in errors:
                assert schema_named(document, described["responses"][status]["content"]["application/json"][
                    "schema"])["title"] == "Error"


def test_every_reference_resolves_and_no_schema_is_left_open(document):
    schemas = document["components"]["schemas"]
    for each in subschemas(document):
        if "$ref" in each:
            assert each["$ref"].startswith("#/components/schemas/") and each["$ref"].rsplit("/", 1)[-1] in schemas
        assert each.get("additionalProperties") is not True, each


def test_path_parameters_come_from_the_route_table(document):
    decision = document["paths"]["/api/merchant/v1/withdrawals/{withdrawal_id}/{decision}"]["post"]["parameters"]
    assert {p["name"]: p["schema"] for p in decision}["decision"] == {"type": "string", "enum": ["approve", "reject"]}
    background = document["paths"]["/api/merchant/v1/posters/backgrounds/{background_id}"]["get"]["parameters"]
    assert background[0]["schema"]["pattern"] == "^[0-9a-f]{24}$"


@pytest.mark.parametrize("name", sorted(SETTINGS_KINDS))
def test_each_settings_kind_is_described_in_full(document, name):
    kind = SETTINGS_KINDS[name]
    path = document["paths"][f"/api/merchant/v1/settings/{name}"]
    body = path["put"]["requestBody"]["content"]["application/json"]["schema"]
    answer = path["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    for schema in (schema_named(document, body), schema_named(document, answer)):
        assert set(schema["properties"]) == set(kind.model_fields)
        for each in schema_tree(document, schema):
            assert {"type", "anyOf", "oneOf", "allOf", "enum", "const"} & set(each), each
            if each.get("type") == "object":
                assert each.get("additionalProperties") is False or each.get("patternProperties") or isinstance(
                    each.get("additionalProperties"), dict), each


async def test_an_unknown_settings_name_is_a_404_naming_the_kinds_there_are(server):
    response = await server.merchant_get("/api/merchant/v1/settings/nothing")
    assert response.status_code == 404 and response.json()["error"]["code"] == "unknown_settings"
    assert all(name in response.json()["error"]["message"] for name in SETTINGS_KINDS)
    assert (await server.http.get("/api/merchant/v1/settings/nothing")).status_code == 401


def test_my_phone_is_refused_by_the_documented_pattern_and_shown_masked(document):
    change = document["paths"]["/api/v1/me"]["patch"]["requestBody"]["content"]["application/json"]["schema"]
    phone = schema_named(document, change)["properties"]["phone"]
    (pattern,) = [each["pattern"] for each in phone["anyOf"] if "pattern" in each]
    assert pattern == ProfileChange.model_json_schema()["properties"]["phone"]["anyOf"][0]["pattern"]
    assert re.search(pattern, "+8613812345678") and not re.search(pattern, "call me")
    me = document["paths"]["/api/v1/me"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert "masked" in schema_named(document, me)["properties"]["phone"]["description"]


# --- one error map ---------------------------------------------------------------------------------


@pytest.mark.parametrize("error, status, code", [
    (InvalidField("items[0].qty", "must be at least 1"), 400, "invalid"),
    (Invalid("no", field="x"), 400, "invalid"),
    (Forbidden("no"), 403, "forbidden"),
    (NotFound("no", code="order_not_found"), 404, "order_not_found"),
    (Conflict("no"), 409, "conflict"),
    (Refused("no", code="insufficient_balance"), 409, "insufficient_balance"),
    (Unavailable("no"), 503, "unavailable"),
    (WeChatError(None, "timed out", "wxa/getwxacodeunlimit"), 503, "wechat_unavailable"),
])
def test_each_kind_of_error_has_one_status_and_keeps_its_code(error, status, code):
    assert error_status(error) == status
    assert error_detail(error).code == code


def test_a_bug_is_not_in_the_error_map():
    assert error_status(KeyError("x")) is None


# --- what the models refuse is refused over HTTP ---------------------------------------------------


@pytest.mark.parametrize("path, body, field", [
    ("commission", {"freeze_days": HUGE}, "freeze_days"),
    ("commission", {"freeze_days": -1}, "freeze_days"),
    ("commission", {"level_rates_bp": [1000, 0.5]}, "level_rates_bp[1]"),
    ("withdrawals", {"min_fen": HUGE}, "min_fen"),
    ("withdrawals", {"auto_approve_under_fen": -1}, "auto_approve_under_fen"),
    ("withdrawals", {"daily_amount_cap_fen": 1.5}, "daily_amount_cap_fen"),
    ("binding", {"spend_threshold_fen": HUGE}, "spend_threshold_fen"),
    ("posters", {"default_template": "x" * 10_000}, "default_template"),
    ("grades", {"grades": [{"name": "g" * 10_000}]}, "grades[0].name"),
])
async def test_out_of_range_settings_are_400s_naming_the_field(server, path, body, field):
    response = await server.http.put(f"/api/merchant/v1/settings/{path}", json=body, headers=MERCHANT)
    assert (response.status_code, response.json()["error"]["field"]) == (400, field), response.text


async def test_out_of_range_money_and_text_are_400s_naming_the_field(server):
    headers = auth((await login(server, "edges"))["token"])
    for amount in (-1, 0, 1.5, HUGE, "100"):
        response = await server.http.post("/api/v1/withdrawals", json={"amount_fen": amount, "method": "bank"},
                                          headers=headers)
        assert (response.status_code, response.json()["error"]["field"]) == (400, "amount_fen"), amount
    application = {"name": "名" * 10_000, "phone": "13900001111", "reason": "r"}
    response = await server.http.post("/api/v1/promoter-application", json=application, headers=headers)
    assert (response.status_code, response.json()["error"]["field"]) == (400, "name")
    order = {"order_no": "EDGE", "buyer": {"member_id": "x"},
             "items": [{"sku": "s", "title": "t", "qty": 1, "paid_fen": 1}]}
    for paid_fen in (-1, 1.5, HUGE):
        order["items"][0]["paid_fen"] = paid_fen
        response = await server.http.post("/api/merchant/v1/orders", json=order, headers=MERCHANT)
        assert (response.status_code, response.json()["error"]["field"]) == (400, "items[0].paid_fen"), paid_fen
    response = await server.http.post("/api/merchant/v1/withdrawals/x/reject", json={"reason": "r" * 10_000},
                                      headers=MERCHANT)
    assert (response.status_code, response.json()["error"]["field"]) == (400, "reason")


async def test_out_of_range_query_parameters_are_400s_naming_the_parameter(server):
    member = await add_member(server.runtime)
    headers = auth((await login(server, "queries"))["token"])
    cases = [
        ("/api/merchant/v1/withdrawals", {"limit": str(HUGE)}, "limit", MERCHANT),
        ("/api/merchant/v1/commissions", {"limit": "-1"}, "limit", MERCHANT),
        ("/api/merchant/v1/applications", {"limit": "1.5"}, "limit", MERCHANT),
        (f"/api/merchant/v1/members/{member['_id']}/binds", {"cursor": "x" * 10_000}, "cursor", MERCHANT),
        ("/api/merchant/v1/members", {"openid": "o" * 10_000}, "openid", MERCHANT),
        ("/api/merchant/v1/stats/promoters", {"limit": str(HUGE)}, "limit", MERCHANT),
        ("/api/merchant/v1/stats/promoters", {"from": "99999-01-01"}, "from", MERCHANT),
        ("/api/merchant/v1/withdrawals", {"status": "lost"}, "status", MERCHANT),
        ("/api/v1/ledger", {"limit": str(HUGE)}, "limit", headers),
        ("/api/v1/team", {"depth": "3"}, "depth", headers),
        ("/api/v1/poster", {"template": "t" * 10_000}, "template", headers),
    ]
    for path, params, field, with_headers in cases:
        response = await server.http.get(path, params=params, headers=with_headers)
        assert (response.status_code, response.json()["error"]["field"]) == (400, field), (path, params)


async def test_bodies_that_are_not_objects_are_400s(server):
    for body in (b"[1]", b'"text"', b"null", b"1e999", b"{", b"[" * 30_000 + b"]" * 30_000):
        response = await server.http.put("/api/merchant/v1/settings/commission", content=body, headers=MERCHANT)
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid", body


# --- for people ------------------------------------------------------------------------------------


async def test_the_api_reference_page_and_its_assets_are_served_here(server):
    page = await server.http.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '"/openapi.json"' in page.text
    assets = re.findall(r'(?:src|href)="(/docs/[^"]+)"', page.text)
    assert {asset.rsplit("/", 1)[-1] for asset in assets} >= {"swagger-ui-bundle.js", "swagger-ui.css"}
    for asset in assets:
        response = await server.http.get(asset)
        assert response.status_code == 200 and len(response.content) > 100, asset
    assert (await server.http.get("/docs/assets/../../settings.py")).status_code in (403, 404)
