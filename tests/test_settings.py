import base64

import pytest

from settings import DEMO_DATA_KEY, DEMO_SESSION_SECRET, SANDBOX_OA_APP_ID, SettingsError, load_settings

# A deployment's configuration, in the formats WeChat's console and `openssl rand` give.
PRODUCTION = {
    "WECHAT_APP_ID": "wx1234567890abcdef",
    "WECHAT_APP_SECRET": "3f6c1e0a9b8d47e2a5c4b1f09e8d7c6b",
    "WECHAT_TOKEN": "Xk3vQ9pL2mZ7rT4w",
    "MINIAPP_APP_ID": "wxfedcba0987654321",
    "MINIAPP_APP_SECRET": "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    "MERCHANT_API_TOKEN": "5d41402abc4b2a76b9719d911017c592",
    "SESSION_SECRET": "7c9e6679742540de944be07fc1f90ae7",
    "DATA_KEY": "q83vEjRWeJq83vEjRWeJq4Hh6sP0mB5cT2yL9nD1fGk=",
    "MONGODB_URI": "mongodb://db1.internal:27017,db2.internal:27017/?replicaSet=rs0",
    "REDIS_URL": "redis://:password@redis.internal:6379/0",
}


def refusal(environ: dict[str, str]) -> SettingsError:
    with pytest.raises(SettingsError) as refused:
        load_settings(environ, env_file=None)
    return refused.value


def test_a_full_production_config_loads_and_nothing_in_it_is_the_sandbox():
    settings = load_settings(PRODUCTION, env_file=None)
    assert not settings.demo and not settings.merchant_token_generated
    assert settings.wechat_app_id == PRODUCTION["WECHAT_APP_ID"]
    assert settings.miniapp_app_id == PRODUCTION["MINIAPP_APP_ID"]
    assert settings.wechat_api_base == "https://api.weixin.qq.com"
    assert settings.wechat_pay_api_base == "https://api.mch.weixin.qq.com"
    assert settings.wechat_open_base == "https://open.weixin.qq.com"
    assert settings.notify_templates == {}  # only configured templates are sent
    assert settings.public_base_url is None and settings.share_link_secret is None  # no H5 links until set


def test_without_wechat_app_id_or_demo_the_start_stops_and_says_how_to_run_the_demo():
    """Production stores and no WECHAT_APP_ID used to be the demo, silently; now it is a mistake said plainly."""
    for environ in ({}, {key: value for key, value in PRODUCTION.items() if key != "WECHAT_APP_ID"}):
        refused = refusal(environ)
        assert refused.name == "WECHAT_APP_ID" and "DEMO=1" in str(refused)
    assert refusal({**PRODUCTION, "WECHAT_APP_ID": "", "DEMO": "0"}).name == "WECHAT_APP_ID"


@pytest.mark.parametrize("missing", ["MINIAPP_APP_ID", "MINIAPP_APP_SECRET", "WECHAT_APP_SECRET", "WECHAT_TOKEN",
                                     "MERCHANT_API_TOKEN", "SESSION_SECRET", "DATA_KEY"])
def test_outside_demo_mode_every_identity_and_secret_is_required(missing):
    refused = refusal({key: value for key, value in PRODUCTION.items() if key != missing})
    assert refused.name == missing and "required" in str(refused)


def test_demo_mode_needs_only_demo_and_generates_a_merchant_token():
    settings = load_settings({"DEMO": "1"}, env_file=None)
    assert settings.demo and settings.merchant_token_generated and len(settings.merchant_api_token) >= 32
    assert settings.wechat_app_id == SANDBOX_OA_APP_ID
    assert settings.wechat_api_base is None  # the embedded sandbox's, once it listens
    assert settings.wechat_open_base is None  # the sandbox's too
    assert settings.mongodb_uri is None and settings.port == 8000


@pytest.mark.parametrize("stores", [
    {"MONGODB_URI": "mongodb://127.0.0.1:27017/?directConnection=true"},
    {"MONGODB_URI": "mongodb://user:pw@localhost:27017,127.0.0.2:27018/?replicaSet=rs0"},
    {"MONGODB_URI": "mongodb://[::1]:27017"},
    {"MONGODB_URI": "mongodb://%2Ftmp%2Fmongodb-27017.sock"},
    {"REDIS_URL": "redis://127.0.0.1:6379/0"},
    {"REDIS_URL": "rediss://:secret@localhost:6380/1"},
    {"REDIS_URL": "unix:///run/redis/redis.sock"},
])
def test_demo_mode_runs_on_local_stores(stores):
    assert load_settings({"DEMO": "1", **stores}, env_file=None).demo


@pytest.mark.parametrize("stores, variable, host", [
    ({"MONGODB_URI": "mongodb://db.example.com:27017"}, "MONGODB_URI", "db.example.com"),
    ({"MONGODB_URI": "mongodb://user:pw@127.0.0.1:27017,10.0.0.7:27017/?replicaSet=rs0"}, "MONGODB_URI",
     "10.0.0.7"),
    ({"MONGODB_URI": "mongodb+srv://cluster0.example.net/"}, "MONGODB_URI", "mongodb+srv"),
    ({"REDIS_URL": "redis://:pw@redis.internal:6379/0"}, "REDIS_URL", "redis.internal"),
    ({"REDIS_URL": "redis://192.168.1.20:6379/0"}, "REDIS_URL", "192.168.1.20"),
])
def test_demo_mode_refuses_a_deployments_stores(stores, variable, host):
    refused = refusal({"DEMO": "1", **stores})
    assert refused.name == variable and host in str(refused) and "DEMO=1" in str(refused)
    assert "pw" not in str(refused)  # the password is not repeated


@pytest.mark.parametrize("variable", ["WECHAT_APP_ID", "WECHAT_APP_SECRET", "WECHAT_TOKEN", "MINIAPP_APP_ID",
                                      "MINIAPP_APP_SECRET"])
def test_demo_mode_refuses_a_real_wechat_identity(variable):
    """A production environment with DEMO=1 added by mistake stops instead of talking to the sandbox."""
    refused = refusal({"DEMO": "1", variable: PRODUCTION[variable]})
    assert refused.name == variable and "demo" in str(refused)


@pytest.mark.parametrize(
    "change, variable",
    [
        ({"WECHAT_APP_SECRET": ""}, "WECHAT_APP_SECRET"),
        ({"WECHAT_TOKEN": ""}, "WECHAT_TOKEN"),
        ({"WECHAT_TOKEN": "has space"}, "WECHAT_TOKEN"),
        ({"MERCHANT_API_TOKEN": ""}, "MERCHANT_API_TOKEN"),
        ({"MERCHANT_API_TOKEN": "short"}, "MERCHANT_API_TOKEN"),
        ({"PORT": "eighty"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"MONGODB_URI": "postgres://x"}, "MONGODB_URI"),
        ({"MONGODB_DB": "a/b"}, "MONGODB_DB"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL"),
        ({"WECHAT_API_BASE": "ftp://x"}, "WECHAT_API_BASE"),
        ({"WECHAT_OPEN_BASE": "open.weixin.qq.com"}, "WECHAT_OPEN_BASE"),
        ({"WECHAT_AES_KEY": "too-short"}, "WECHAT_AES_KEY"),
        ({"WECHAT_TIMEOUT_SECONDS": "0"}, "WECHAT_TIMEOUT_SECONDS"),
        ({"PUSH_DEDUP_SECONDS": "10"}, "PUSH_DEDUP_SECONDS"),
        ({"SESSION_SECRET": ""}, "SESSION_SECRET"),
        ({"DATA_KEY": "c2hvcnQ="}, "DATA_KEY"),
        ({"DATA_KEY": "not base64!"}, "DATA_KEY"),
        ({"SESSION_DAYS": "0"}, "SESSION_DAYS"),
        ({"DEMO": "maybe"}, "DEMO"),
    ],
)
def test_a_bad_value_names_its_variable(change, variable):
    refused = refusal({**PRODUCTION, **change})
    assert refused.name == variable and variable in str(refused)


@pytest.mark.parametrize(
    "variable, weak",
    [
        ("SESSION_SECRET", "q"),
        ("SESSION_SECRET", "a-session-secret"),
        ("SESSION_SECRET", "ab" * 20),  # long, but two characters over and over
        ("SESSION_SECRET", DEMO_SESSION_SECRET),  # published with the code
        ("MERCHANT_API_TOKEN", "a-long-merchant-token"),
        ("MERCHANT_API_TOKEN", "x" * 64),
        ("SHARE_LINK_SECRET", "a-share-link-secret-0123"),
        ("WECHAT_APP_SECRET", "secret"),
        ("MINIAPP_APP_SECRET", "0a1b2c3d4e5f6071"),
        ("WECHAT_TOKEN", "token123"),  # WeChat takes it, but it is guessed from one signed push
        ("WECHAT_TOKEN", "Xk3vQ9pL2mZ7rT4wXk3vQ9pL2mZ7rT4wX"),  # 33: more than WeChat allows
        ("WECHAT_TOKEN", "令牌令牌令牌令牌令牌令牌令牌令牌"),  # WeChat takes English letters and digits only
        ("DATA_KEY", base64.b64encode(bytes(32)).decode()),
        ("DATA_KEY", DEMO_DATA_KEY),
    ],
)
def test_a_weak_secret_is_refused_naming_its_variable_but_not_quoting_it(variable, weak):
    refused = refusal({**PRODUCTION, variable: weak})
    assert refused.name == variable and weak not in str(refused)


def test_the_minimum_strengths_are_met_by_what_wechat_and_openssl_give():
    """WeChat's AppSecret is 32 hex digits and its token at most 32 letters or digits; `openssl rand -hex 16`
    gives 32 characters."""
    settings = load_settings({**PRODUCTION, "WECHAT_TOKEN": "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6",
                              "SHARE_LINK_SECRET": "9f86d081884c7d659a2feaa0c55ad015"}, env_file=None)
    assert len(settings.wechat_token) == 32 and settings.share_link_secret == "9f86d081884c7d659a2feaa0c55ad015"
    assert len(load_settings(PRODUCTION, env_file=None).wechat_token) == 16


def test_dotenv_file_is_read_and_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("DEMO=1\nPORT=9001\nMONGODB_DB=fromfile\n")
    settings = load_settings({"MONGODB_DB": "fromenv"}, env_file=env_file)
    assert settings.demo and (settings.port, settings.mongodb_db) == (9001, "fromenv")


def test_the_demo_follows_port():
    settings = load_settings({"DEMO": "1", "PORT": "8765"}, env_file=None)
    assert settings.port == 8765 and settings.public_base_url == "http://127.0.0.1:8765"
