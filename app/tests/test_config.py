"""Configuration from environment variables."""

from __future__ import annotations

from pathlib import Path

import pytest
from conduit.config import DEVELOPMENT_SECRET_KEY, ConfigError, load_config, mask_url, normalise_database_url

GOOD_KEY = "k" * 40


def test_defaults_are_production_and_need_a_secret_key():
    with pytest.raises(ConfigError, match="SECRET_KEY is not set: refusing to start in production mode"):
        load_config({})
    config = load_config({"SECRET_KEY": GOOD_KEY})
    assert config.env == "production"
    assert config.is_production
    assert config.metrics_enabled
    assert config.max_content_length == 1024 * 1024
    assert config.password_hash_method == "scrypt:32768:8:1"
    assert (config.login_account_limit, config.login_address_limit, config.login_window) == (5, 50, 900)
    assert [str(network) for network in config.trusted_proxies] == ["127.0.0.1/32"]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("   ", "is not set"),
        ("changeme", "placeholder"),
        (DEVELOPMENT_SECRET_KEY, "placeholder"),
        ("s" * 31, "31"),
    ],
)
def test_production_refuses_weak_secret_keys(key, message):
    with pytest.raises(ConfigError, match=message):
        load_config({"CONDUIT_ENV": "production", "SECRET_KEY": key})


def test_development_and_testing_have_a_default_key():
    assert load_config({"CONDUIT_ENV": "development"}).secret_key == DEVELOPMENT_SECRET_KEY
    testing = load_config({"CONDUIT_ENV": "Testing", "SECRET_KEY": "mine"})
    assert testing.secret_key == "mine"
    assert testing.password_hash_method.startswith("pbkdf2")
    assert not testing.is_production


def test_unknown_environment_is_an_error():
    with pytest.raises(ConfigError, match="CONDUIT_ENV='staging' is not one of"):
        load_config({"CONDUIT_ENV": "staging"})


def test_default_database_is_a_sqlite_file_in_the_data_dir(tmp_path, monkeypatch):
    env = {"CONDUIT_ENV": "development"}
    assert (
        load_config({**env, "CONDUIT_DATA_DIR": str(tmp_path)}).database_url
        == f"sqlite:///{tmp_path}/conduit.db"
    )
    state = tmp_path / "state"
    config = load_config({**env, "STATE_DIRECTORY": f"{state}:/other"})
    assert config.database_url == f"sqlite:///{state}/conduit.db"
    monkeypatch.chdir(tmp_path)
    assert load_config(env).database_url == f"sqlite:///{Path(tmp_path).resolve()}/conduit.db"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:p@db/conduit", "postgresql+psycopg://u:p@db/conduit"),
        ("postgresql://u:p@db/conduit", "postgresql+psycopg://u:p@db/conduit"),
        ("postgresql+psycopg://u@db/c", "postgresql+psycopg://u@db/c"),
        ("sqlite:////var/lib/conduit/x.db", "sqlite:////var/lib/conduit/x.db"),
    ],
)
def test_database_url(url, expected):
    assert normalise_database_url(url) == expected
    assert load_config({"CONDUIT_ENV": "testing", "DATABASE_URL": f" {url} "}).database_url == expected


@pytest.mark.parametrize(
    ("raw", "expected"), [("0", False), ("off", False), ("Yes", True), ("1", True), ("", True)]
)
def test_metrics_flag(raw, expected):
    assert load_config({"CONDUIT_ENV": "testing", "CONDUIT_METRICS": raw}).metrics_enabled is expected


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("CONDUIT_METRICS", "maybe", "is not a boolean"),
        ("CONDUIT_MAX_CONTENT_LENGTH", "big", "is not an integer"),
        ("CONDUIT_MAX_CONTENT_LENGTH", "0", "must be a positive integer"),
        ("CONDUIT_TOKEN_TTL", "-5", "must be a positive integer"),
    ],
)
def test_invalid_values(name, raw, message):
    with pytest.raises(ConfigError, match=message):
        load_config({"CONDUIT_ENV": "testing", name: raw})


def test_describe_hides_secrets():
    config = load_config(
        {
            "SECRET_KEY": GOOD_KEY,
            "DATABASE_URL": "postgresql://conduit:hunter2@db:5432/conduit",
            "CONDUIT_TOKEN_TTL": "60",
        }
    )
    described = config.describe()
    assert GOOD_KEY not in str(described)
    assert "hunter2" not in str(described)
    assert described["DATABASE_URL"] == "postgresql+psycopg://conduit:***@db:5432/conduit"
    assert described["CONDUIT_TOKEN_TTL"] == "60"
    assert mask_url("not a url") == "not a url"


def test_multiproc_dir_must_be_a_directory(tmp_path):
    env = {"CONDUIT_ENV": "testing"}
    assert load_config(env).multiproc_dir is None
    assert load_config({**env, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}).multiproc_dir == str(tmp_path)
    with pytest.raises(ConfigError, match="set but empty"):
        load_config({**env, "PROMETHEUS_MULTIPROC_DIR": " "})
    with pytest.raises(ConfigError, match="is not a directory"):
        load_config({**env, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "missing")})
    # without metrics the variable does not matter
    assert load_config({**env, "PROMETHEUS_MULTIPROC_DIR": "", "CONDUIT_METRICS": "0"}).multiproc_dir == ""


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", "pbkdf2:sha256:1000"),
        ("scrypt", "scrypt"),
        ("scrypt:131072:8:1", "scrypt:131072:8:1"),
        ("pbkdf2:sha512:210000", "pbkdf2:sha512:210000"),
    ],
)
def test_password_hash_method(raw, expected):
    assert (
        load_config({"CONDUIT_ENV": "testing", "CONDUIT_PASSWORD_HASH": raw}).password_hash_method == expected
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("bcrypt", "is not a password hashing method"),
        ("pbkdf2:md5:1000", "is not a password hashing method"),
        ("scrypt:1000:8:1", "power of 2"),
        ("scrypt:16384:0:1", "power of 2"),
        ("pbkdf2:sha256:0", "iterations must be positive"),
    ],
)
def test_invalid_password_hash_method(raw, message):
    with pytest.raises(ConfigError, match=message):
        load_config({"CONDUIT_ENV": "testing", "CONDUIT_PASSWORD_HASH": raw})


def test_login_throttle_settings():
    config = load_config(
        {
            "CONDUIT_ENV": "testing",
            "CONDUIT_LOGIN_ACCOUNT_LIMIT": "3",
            "CONDUIT_LOGIN_ADDRESS_LIMIT": "30",
            "CONDUIT_LOGIN_WINDOW": "60",
        }
    )
    assert (config.login_account_limit, config.login_address_limit, config.login_window) == (3, 30, 60)
    with pytest.raises(ConfigError, match="CONDUIT_LOGIN_ACCOUNT_LIMIT='0' must be a positive integer"):
        load_config({"CONDUIT_ENV": "testing", "CONDUIT_LOGIN_ACCOUNT_LIMIT": "0"})


def test_trusted_proxies():
    config = load_config(
        {"CONDUIT_ENV": "testing", "CONDUIT_FORWARDED_ALLOW_IPS": "192.0.2.10, 2001:db8::/64"}
    )
    assert [str(network) for network in config.trusted_proxies] == ["192.0.2.10/32", "2001:db8::/64"]
    assert config.describe()["CONDUIT_FORWARDED_ALLOW_IPS"] == "192.0.2.10/32,2001:db8::/64"
    assert load_config({"CONDUIT_ENV": "testing", "CONDUIT_FORWARDED_ALLOW_IPS": "*"}).trusted_proxies is None
    assert load_config({"CONDUIT_ENV": "testing", "CONDUIT_FORWARDED_ALLOW_IPS": ""}).trusted_proxies == ()
    with pytest.raises(ConfigError, match="'lb1' is not an IP address or network"):
        load_config({"CONDUIT_ENV": "testing", "CONDUIT_FORWARDED_ALLOW_IPS": "192.0.2.10,lb1"})
