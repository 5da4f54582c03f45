"""The sandbox speaks WeChat's HTTP contract: checked with plain HTTP, no project client in between."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from sandbox import SandboxState, openid_for, session_key_for, start_sandbox, unionid_for
from settings import SANDBOX_MINIAPP_APP_ID, SANDBOX_MINIAPP_APP_SECRET, SANDBOX_OA_APP_ID, SANDBOX_OA_APP_SECRET


@pytest.fixture
async def http(sandbox):
    async with httpx.AsyncClient(base_url=sandbox.base_url, timeout=5) as client:
        yield client


def stable_token_body(force_refresh: bool = False, secret: str = SANDBOX_OA_APP_SECRET) -> dict:
    return {"grant_type": "client_credential", "appid": SANDBOX_OA_APP_ID, "secret": secret, "force_refresh": force_refresh}


async def access_token(http: httpx.AsyncClient) -> str:
    return (await http.post("/cgi-bin/stable_token", json=stable_token_body())).json()["access_token"]


# --- tokens ----------------------------------------------------------------------------------


async def test_the_stable_token_stays_the_same_until_a_forced_refresh(http):
    first = (await http.post("/cgi-bin/stable_token", json=stable_token_body())).json()
    again = (await http.post("/cgi-bin/stable_token", json=stable_token_body())).json()
    forced = (await http.post("/cgi-bin/stable_token", json=stable_token_body(force_refresh=True))).json()

    assert first["expires_in"] == 7200 and 0 < again["expires_in"] <= 7200
    assert again["access_token"] == first["access_token"] != forced["access_token"]
    stale = await http.get("/cgi-bin/user/info", params={"access_token": first["access_token"], "openid": "o-1"})
    assert stale.json()["errcode"] == 40001


async def test_the_classic_token_endpoint_issues_a_new_token_per_call(http):
    params = {"grant_type": "client_credential", "appid": SANDBOX_OA_APP_ID, "secret": SANDBOX_OA_APP_SECRET}

    first = (await http.get("/cgi-bin/token", params=params)).json()
    second = (await http.get("/cgi-bin/token", params=params)).json()

    assert first["access_token"] != second["access_token"] and first["expires_in"] == 7200


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        (stable_token_body(secret="wrong"), 40125),
        ({**stable_token_body(), "appid": "wxunknown"}, 40013),
        ({**stable_token_body(), "grant_type": "password"}, 40002),
    ],
)
async def test_bad_credentials_are_refused(http, body, errcode):
    response = await http.post("/cgi-bin/stable_token", json=body)

    assert response.status_code == 200 and response.json()["errcode"] == errcode


@pytest.mark.parametrize("params", [{}, {"access_token": "made-up"}])
async def test_a_missing_or_unknown_token_is_an_invalid_credential(http, params):
    answer = (await http.get("/cgi-bin/user/info", params={**params, "openid": "o-1"})).json()

    assert answer["errcode"] == 40001 and answer["errmsg"].startswith("invalid credential")


async def test_expiring_tokens_through_the_control_api(http):
    token = await access_token(http)

    assert (await http.post("/_sandbox/tokens/expire")).json() == {"ok": True}

    answer = (await http.get("/cgi-bin/user/info", params={"access_token": token, "openid": "o-1"})).json()
    assert answer["errcode"] == 40001
    assert await access_token(http) != token


async def test_a_token_expires_with_its_lifetime():
    short_lived = await start_sandbox(state=SandboxState(token_lifetime_seconds=0))
    try:
        async with httpx.AsyncClient(base_url=short_lived.base_url, timeout=5) as http:
            token = await access_token(http)
            answer = (await http.get("/cgi-bin/user/info", params={"access_token": token, "openid": "o-1"})).json()
    finally:
        await short_lived.stop()

    assert answer["errcode"] == 40001


# --- endpoints -------------------------------------------------------------------------------


async def test_the_wrong_method_is_refused_as_wechat_does(http):
    token = await access_token(http)

    get_on_post = (await http.get("/cgi-bin/qrcode/create", params={"access_token": token})).json()
    post_on_get = (await http.post("/cgi-bin/user/info", params={"access_token": token})).json()

    assert (get_on_post["errcode"], post_on_get["errcode"]) == (43002, 43001)


async def test_a_malformed_body_is_a_data_format_error(http):
    token = await access_token(http)

    response = await http.post("/cgi-bin/qrcode/create", params={"access_token": token}, content=b"{not json")

    assert response.json()["errcode"] == 47001


async def test_qr_codes_are_deterministic_per_scene(http):
    token = await access_token(http)
    body = {"action_name": "QR_STR_SCENE", "action_info": {"scene": {"scene_str": "promoter:7"}}}

    first = (await http.post("/cgi-bin/qrcode/create", params={"access_token": token}, json=body)).json()
    again = (await http.post("/cgi-bin/qrcode/create", params={"access_token": token}, json=body)).json()

    assert first == again and first["expire_seconds"] == 60
    assert first["url"].startswith("http://weixin.qq.com/q/")


async def test_a_media_upload_without_the_media_field_is_refused(http):
    token = await access_token(http)

    answer = (
        await http.post("/cgi-bin/media/upload", params={"access_token": token, "type": "image"}, files={"file": b"x"})
    ).json()

    assert answer["errcode"] == 41005


async def test_an_invalid_mini_program_scene_is_a_json_error_with_http_200(http):
    token = await access_token(http)

    response = await http.post(
        "/wxa/getwxacodeunlimit", params={"access_token": token}, json={"scene": "x" * 33, "page": "pages/index/index"}
    )

    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    assert response.json()["errcode"] == 40169


async def test_a_mini_program_code_is_served_as_png(http):
    token = await access_token(http)

    response = await http.post("/wxa/getwxacodeunlimit", params={"access_token": token}, json={"scene": "p=1"})

    assert response.headers["content-type"] == "image/png" and response.content.startswith(b"\x89PNG")


async def test_login_sessions_are_predictable_per_code(http):
    params = {
        "appid": SANDBOX_MINIAPP_APP_ID,
        "secret": SANDBOX_MINIAPP_APP_SECRET,
        "js_code": "bob",
        "grant_type": "authorization_code",
    }

    session = (await http.get("/sns/jscode2session", params=params)).json()
    refused = (await http.get("/sns/jscode2session", params={**params, "js_code": "invalid"})).json()

    assert session == {
        "openid": openid_for(SANDBOX_MINIAPP_APP_ID, "bob"),
        "session_key": session_key_for(SANDBOX_MINIAPP_APP_ID, "bob"),
        "unionid": unionid_for("bob"),
    }
    assert refused["errcode"] == 40029


def authorize_params(**changes: str) -> dict:
    return {"appid": SANDBOX_OA_APP_ID, "redirect_uri": "https://shop.example.com/s/1/bind?from=qr",
            "response_type": "code", "scope": "snsapi_base", "state": "signed", "sandbox_user": "carol", **changes}


def code_exchange_params(code: str, secret: str = SANDBOX_OA_APP_SECRET) -> dict:
    return {"appid": SANDBOX_OA_APP_ID, "secret": secret, "code": code, "grant_type": "authorization_code"}


async def test_web_authorization_sends_the_browser_back_with_a_code_exchanged_once(http):
    authorized = await http.get("/connect/oauth2/authorize", params=authorize_params())

    assert authorized.status_code == 302
    back = urlsplit(authorized.headers["location"])
    assert (back.scheme, back.netloc, back.path) == ("https", "shop.example.com", "/s/1/bind")
    query = dict(parse_qsl(back.query))
    assert query["from"] == "qr" and query["state"] == "signed" and query["code"]

    exchanged = (await http.get("/sns/oauth2/access_token", params=code_exchange_params(query["code"]))).json()
    again = (await http.get("/sns/oauth2/access_token", params=code_exchange_params(query["code"]))).json()
    made_up = (await http.get("/sns/oauth2/access_token", params=code_exchange_params("made-up"))).json()

    assert exchanged["openid"] == openid_for(SANDBOX_OA_APP_ID, "carol") and exchanged["unionid"] == unionid_for("carol")
    assert exchanged["scope"] == "snsapi_base" and exchanged["access_token"] and exchanged["refresh_token"]
    assert again["errcode"] == 40163 and made_up["errcode"] == 40029


async def test_a_code_is_exchanged_only_by_its_app_with_its_secret(http):
    location = (await http.get("/connect/oauth2/authorize", params=authorize_params())).headers["location"]
    code = dict(parse_qsl(urlsplit(location).query))["code"]
    other_app = {**code_exchange_params(code), "appid": SANDBOX_MINIAPP_APP_ID, "secret": SANDBOX_MINIAPP_APP_SECRET}

    assert (await http.get("/sns/oauth2/access_token", params=code_exchange_params(code, "wrong"))).json()["errcode"] == 40125
    assert (await http.get("/sns/oauth2/access_token", params=other_app)).json()["errcode"] == 40029
    assert "openid" in (await http.get("/sns/oauth2/access_token", params=code_exchange_params(code))).json()


@pytest.mark.parametrize(
    ("changes", "errcode"),
    [
        ({"appid": "wxunknown"}, 40013),
        ({"redirect_uri": "/s/1/bind"}, 10003),
        ({"redirect_uri": "javascript:alert(1)"}, 10003),
        ({"scope": "snsapi_everything"}, 10005),
        ({"response_type": "token"}, 10005),
    ],
)
async def test_a_bad_authorization_request_is_refused_without_a_redirect(http, changes, errcode):
    response = await http.get("/connect/oauth2/authorize", params=authorize_params(**changes))

    assert response.status_code == 200 and response.json()["errcode"] == errcode


async def test_the_authorize_page_needs_to_be_told_who_opened_it(http):
    params = authorize_params()
    del params["sandbox_user"]

    response = await http.get("/connect/oauth2/authorize", params=params)

    assert response.status_code == 400 and "sandbox_user" in response.text


async def test_an_unknown_endpoint_is_not_found(http):
    assert (await http.get("/cgi-bin/no/such/thing")).status_code == 404


# --- recording and faults --------------------------------------------------------------------


async def test_calls_are_recorded_and_can_be_listed_and_reset(http):
    token = await access_token(http)
    await http.get("/cgi-bin/user/info", params={"access_token": token, "openid": "o-1"})

    listed = (await http.get("/_sandbox/calls", params={"endpoint": "cgi-bin/user/info"})).json()["calls"]

    assert [(call["endpoint"], call["method"], call["query"]["openid"]) for call in listed] == [
        ("cgi-bin/user/info", "GET", "o-1")
    ]
    everything = (await http.get("/_sandbox/calls")).json()["calls"]
    assert [call["endpoint"] for call in everything] == ["cgi-bin/stable_token", "cgi-bin/user/info"]
    assert everything[0]["body"]["appid"] == SANDBOX_OA_APP_ID
    await http.delete("/_sandbox/calls")
    assert (await http.get("/_sandbox/calls")).json() == {"calls": []}


async def test_faults_injected_through_the_control_api_fail_the_next_calls(http):
    token = await access_token(http)
    fault = {"endpoint": "cgi-bin/user/info", "errcode": 45009, "times": 2}
    assert (await http.post("/_sandbox/faults", json=fault)).json() == {"ok": True}

    errcodes = [
        (await http.get("/cgi-bin/user/info", params={"access_token": token, "openid": "o-1"})).json().get("errcode")
        for _ in range(3)
    ]

    assert errcodes == [45009, 45009, None]


async def test_a_lasting_fault_holds_until_cleared(http):
    token = await access_token(http)
    await http.post("/_sandbox/faults", json={"endpoint": "/cgi-bin/user/info", "errcode": -1, "times": None})

    for _ in range(3):
        answer = (await http.get("/cgi-bin/user/info", params={"access_token": token, "openid": "o-1"})).json()
        assert answer["errcode"] == -1
    await http.delete("/_sandbox/faults")

    answer = (await http.get("/cgi-bin/user/info", params={"access_token": token, "openid": "o-1"})).json()
    assert answer["openid"] == "o-1"


@pytest.mark.parametrize(
    "fault",
    [
        {"endpoint": "cgi-bin/user/info"},
        {"errcode": 45009},
        {"endpoint": "cgi-bin/user/info", "errcode": "45009"},
        {"endpoint": "cgi-bin/user/info", "errcode": 45009, "times": 0},
        {"endpoint": "cgi-bin/user/info", "delay_seconds": -1},
        {"endpoint": "cgi-bin/user/info", "errcode": 45009, "colour": "red"},
        ["not", "an", "object"],
    ],
)
async def test_a_malformed_fault_is_refused(http, fault):
    response = await http.post("/_sandbox/faults", json=fault)

    assert response.status_code == 400 and response.json()["error"]
