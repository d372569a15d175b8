"""A relay restart seen from the /demo page: SIGTERM closes the browser session with 1012
(service restart) and the page comes back by itself with a new token from POST /demo/token,
through the router (:class:`tests.voice.router.Router`) to the relay that is still up."""

from __future__ import annotations

import base64
import secrets
import signal
from pathlib import Path

import pytest

from tests.browser.test_demo import CHROMIUM, speech_wav
from tests.conftest import REDIS_URL
from tests.support import PYTHON, Proc, base_env, free_port, wait_port
from tests.voice.router import Router

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("redis_url")]


def test_the_page_reconnects_after_a_relay_restart(tmp_path: Path):
    if not Path(CHROMIUM).exists():
        pytest.fail("the browser test needs Debian's chromium: run `make browser-deps`")
    from playwright.sync_api import sync_playwright

    sim, web, r1, r2 = (free_port() for _ in range(4))
    router = Router(r1).start()
    env = base_env(
        {
            "APP_ENV": "development",
            "ENCRYPTION_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            "RELAY_PUBLIC_URL": f"ws://127.0.0.1:{router.port}",
            "OPENAI_API_KEY": "sk-sim-browser",
            "OPENAI_REALTIME_URL": f"ws://127.0.0.1:{sim}/v1/realtime",
            "REDIS_URL": REDIS_URL,
        }
    )

    def proc(name: str, module: str, port: int, *extra: str) -> Proc:
        args = [PYTHON, "-m", module, "--host", "127.0.0.1", "--port", str(port), *extra]
        return Proc(name, args, env, tmp_path)

    procs = [
        proc("sim", "sandbox.realtime_sim", sim, "--api-key", "sk-sim-browser"),
        proc("relay1", "relay", r1),
        proc("relay2", "relay", r2),
        proc("web", "webhooks", web),
    ]
    wav = speech_wav(tmp_path / "speech.wav")
    args = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
        "--autoplay-policy=no-user-gesture-required",
        "--no-sandbox",
    ]
    try:
        for port, p in zip((sim, r1, r2, web), procs, strict=True):
            wait_port(port, proc=p.popen)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
            try:
                page = browser.new_page()
                page.goto(f"http://localhost:{web}/demo")
                page.click("#start")
                page.wait_for_function("window.demo.state === 'connected'", timeout=15000)
                router.target = r2  # the router stops sending to the stopping relay
                procs[1].popen.send_signal(signal.SIGTERM)
                page.wait_for_function("window.demo.closeCode === 1012", timeout=15000)
                page.wait_for_function(
                    "window.demo.reconnects === 1 && window.demo.state === 'connected'",
                    timeout=20000,
                )
                demo = page.evaluate("window.demo")
            finally:
                browser.close()
        assert procs[1].popen.wait(15) == 0
        assert demo["closeReason"] == "service_restart"
        assert router.routed[-1] == r2  # the new session is on the relay that stayed up
    finally:
        for p in procs:
            p.stop()
        router.stop()
