import pytest

from settings import SettingsError, load_settings

PRODUCTION = {
    "WECHAT_APP_ID": "wx1234567890",
    "WECHAT_APP_SECRET": "secret",
    "WECHAT_TOKEN": "token123",
    "MERCHANT_API_TOKEN": "a-long-merchant-token",
    "SESSION_SECRET": "a-session-secret",
    "DATA_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
}


def test_demo_mode_needs_nothing_and_generates_a_merchant_token():
    settings = load_settings({}, env_file=None)
    assert settings.demo and settings.merchant_token_generated and len(settings.merchant_api_token) >= 16
    assert settings.wechat_api_base is None  # the embedded sandbox's, once it listens
    assert settings.wechat_open_base is None  # the sandbox's too
    assert settings.mongodb_uri is None and settings.port == 8000


def test_production_defaults_to_wechat_itself():
    settings = load_settings(PRODUCTION, env_file=None)
    assert not settings.demo and settings.wechat_api_base == "https://api.weixin.qq.com"
    assert settings.wechat_open_base == "https://open.weixin.qq.com"


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
    ],
)
def test_a_bad_value_names_its_variable(change, variable):
    with pytest.raises(SettingsError) as error:
        load_settings({**PRODUCTION, **change}, env_file=None)
    assert error.value.name == variable and variable in str(error.value)


def test_dotenv_file_is_read_and_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("PORT=9001\nMONGODB_DB=fromfile\n")
    settings = load_settings({"MONGODB_DB": "fromenv"}, env_file=env_file)
    assert (settings.port, settings.mongodb_db) == (9001, "fromenv")


def test_the_demo_follows_port():
    settings = load_settings({"PORT": "8765"}, env_file=None)
    assert settings.port == 8765 and settings.public_base_url == "http://127.0.0.1:8765"
