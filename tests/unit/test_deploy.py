"""The one-step deploy: app.json, the Procfile and bin/web say and do the same thing."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import urllib.request

import pytest

from common.config import config_names, load_config
from tests.conftest import REDIS_URL
from tests.support import ROOT, Proc, base_env, free_port, wait_port

APP = json.loads((ROOT / "app.json").read_text())


def test_app_json_declares_every_variable() -> None:
    declared = set(APP["env"])
    # REDIS_URL and DATABASE_URL come from the Redis and Postgres add-ons
    assert sorted(set(config_names()) - declared - {"REDIS_URL", "DATABASE_URL"}) == []
    assert any(a["plan"].startswith("heroku-redis") for a in APP["addons"])
    assert any(a["plan"].startswith("heroku-postgresql") for a in APP["addons"])
    for name, spec in APP["env"].items():
        assert spec.get("description"), name
    assert APP["env"]["ENCRYPTION_KEY"]["generator"] == "secret"
    assert APP["env"]["CONSOLE_SECRET_KEY"]["generator"] == "secret"
    for name in ("OPENAI_API_KEY", "TWILIO_AUTH_TOKEN", "PUBLIC_BASE_URL", "RELAY_PUBLIC_URL"):
        assert APP["env"][name]["required"] is True


def test_generated_key_is_accepted() -> None:
    """app.json's secret generator makes 64 hex characters: read as a 32-byte key."""
    hex_key = os.urandom(32).hex()
    assert load_config({"ENCRYPTION_KEY": hex_key}).encryption_key == bytes.fromhex(hex_key)


def test_formation_and_procfile_agree() -> None:
    procfile = dict(
        line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line
    )
    assert set(APP["formation"]) <= set(procfile)
    assert {"web", "relay", "worker", "release"} <= set(procfile)
    # The schema is migrated only once the configuration is known to be good.
    assert procfile["release"].strip() == "python -m common.config check && python -m store migrate"
    assert procfile["web"].strip() == "bin/web"
    assert (ROOT / ".python-version").read_text().strip().startswith("3.11")


def _env(port: int, web: str) -> dict[str, str]:
    return base_env(
        {
            "PORT": str(port),
            "GATEFRAMES_WEB": web,
            "REDIS_URL": REDIS_URL,
            "ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
            "WEB_CONCURRENCY": "1",
            "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ.get('PATH', '')}",
        }
    )


@pytest.mark.parametrize("web, health", [("relay", b'"redis":"ok"'), ("webhooks", b'"ok"')])
def test_bin_web_starts_the_right_server_on_port(tmp_path, web: str, health: bytes) -> None:
    """The relay app's web process is the relay, reachable on $PORT on every interface."""
    port = free_port()
    proc = Proc(f"bin-web-{web}", [str(ROOT / "bin" / "web")], _env(port, web), tmp_path)
    try:
        wait_port(port, timeout=60, proc=proc.popen)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as resp:
            assert resp.status == 200 and health in resp.read()
        if web == "relay":
            assert f"0.0.0.0:{port}" in proc.log_text()
    finally:
        proc.stop()


def test_bin_web_refuses_an_unknown_role(tmp_path) -> None:
    out = subprocess.run(
        [str(ROOT / "bin" / "web")], env=_env(free_port(), "bogus"), capture_output=True, text=True
    )
    assert out.returncode == 2 and "GATEFRAMES_WEB" in out.stderr
