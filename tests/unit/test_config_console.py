"""The call log's and the console's settings: the PaaS's ``postgres://`` is accepted, bad
values are named, and the console's secret is required where someone can sign in."""

from __future__ import annotations

import pytest

from common.config import ConfigError, load_config

KEY = "k" * 40


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("postgres://u:p@db.example:5432/d", "postgresql+psycopg://u:p@db.example:5432/d"),
        ("postgresql://u@h/d", "postgresql+psycopg://u@h/d"),
        ("postgresql+psycopg://u@h/d", "postgresql+psycopg://u@h/d"),
        ("sqlite:////srv/log.db", "sqlite:////srv/log.db"),
    ],
)
def test_database_urls_are_normalised_for_psycopg(raw: str, expected: str) -> None:
    assert load_config({"DATABASE_URL": raw}).database_url == expected


@pytest.mark.parametrize("raw", ["mysql://h/d", "db.example:5432", "sqlite://", "postgres://"])
def test_other_database_urls_are_refused_by_name(raw: str) -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        load_config({"DATABASE_URL": raw})


def test_the_database_url_is_a_secret_kept_out_of_repr() -> None:
    cfg = load_config({"DATABASE_URL": "postgres://u:hunter2@h/d"})
    assert "hunter2" not in repr(cfg)


def test_console_secret_is_required_with_staff_outside_development() -> None:
    staff = {"STAFF_NUMBERS": "+14155550100"}
    with pytest.raises(ConfigError, match="CONSOLE_SECRET_KEY"):
        load_config(staff)
    with pytest.raises(ConfigError, match="CONSOLE_SECRET_KEY"):
        load_config({**staff, "CONSOLE_SECRET_KEY": "short"})
    assert load_config({**staff, "CONSOLE_SECRET_KEY": KEY}).console_secret_key == KEY
    assert load_config({**staff, "APP_ENV": "development"}).console_secret_key == ""
    assert load_config({}).staff_numbers == ()  # nobody can sign in: no secret needed
    assert KEY not in repr(load_config({**staff, "CONSOLE_SECRET_KEY": KEY}))


def test_console_defaults_and_bounds() -> None:
    cfg = load_config({})
    assert (cfg.log_retention_days, cfg.takeover_idle_minutes) == (90, 60)
    assert (cfg.staff_login_limit, cfg.staff_login_ip_limit) == ("5 per 15 minutes", "30 per hour")
    for name, raw in (
        ("LOG_RETENTION_DAYS", "0"),
        ("TAKEOVER_IDLE_MINUTES", "0"),
        ("STAFF_LOGIN_LIMIT", "lots"),
        ("STAFF_LOGIN_IP_LIMIT", "5 per fortnight"),
    ):
        with pytest.raises(ConfigError, match=name):
            load_config({name: raw})
