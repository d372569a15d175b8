"""The /demo page in Debian's headless Chromium, with a fake microphone speaking a WAV made by
espeak-ng, through a real web process and relay to the Realtime simulator.

The page is loaded from ``http://localhost:<port>`` (a secure context, so the microphone is
allowed, and an Origin the relay admits in development).
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import subprocess
import urllib.error
import urllib.request
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.tokens import validate
from tests.conftest import REDIS_URL
from tests.support import PYTHON, ROOT, Proc, base_env, free_port, wait_for, wait_port

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("redis_url")]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "var" / "artifacts"


def speech_wav(path: Path) -> Path:
    """espeak-ng speech at 48 kHz, padded with silence so the VAD hears the turn end."""
    raw = path.with_suffix(".raw.wav")
    subprocess.run(
        ["espeak-ng", "-w", str(raw), "I need a new gate opener for my driveway"], check=True
    )
    with wave.open(str(raw)) as src:
        params, frames = src.getparams(), src.readframes(src.getnframes())
    second = b"\x00" * (params.sampwidth * params.framerate)
    with wave.open(str(path), "wb") as out:
        out.setparams(params)
        # Chromium loops the file: long trailing silence lets the assistant finish its answer.
        out.writeframes(second[: len(second) // 2] + frames + second * 10)
    return path


class Stack:
    def __init__(self, log_dir: Path):
        self.key = secrets.token_bytes(32)
        self.web_port, self.relay_port, self.sim_port = free_port(), free_port(), free_port()
        env = base_env(
            {
                "APP_ENV": "development",
                "ENCRYPTION_KEY": base64.b64encode(self.key).decode(),
                "RELAY_PUBLIC_URL": f"ws://127.0.0.1:{self.relay_port}",
                "OPENAI_API_KEY": "sk-sim-browser",
                "OPENAI_REALTIME_URL": f"ws://127.0.0.1:{self.sim_port}/v1/realtime",
                "REDIS_URL": REDIS_URL,
            }
        )
        common = ["--host", "127.0.0.1", "--port"]
        self.procs = [
            Proc(
                "sim",
                [
                    PYTHON,
                    "-m",
                    "sandbox.realtime_sim",
                    *common,
                    str(self.sim_port),
                    "--api-key",
                    "sk-sim-browser",
                ],
                env,
                log_dir,
            ),
            Proc("relay", [PYTHON, "-m", "relay", *common, str(self.relay_port)], env, log_dir),
            Proc("web", [PYTHON, "-m", "webhooks", *common, str(self.web_port)], env, log_dir),
        ]
        ports = (self.sim_port, self.relay_port, self.web_port)
        for port, proc in zip(ports, self.procs, strict=True):
            wait_port(port, proc=proc.popen)

    def sessions(self) -> list[dict]:
        url = f"http://127.0.0.1:{self.sim_port}/_sandbox/sessions"
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.loads(resp.read())["sessions"]

    def stop(self) -> None:
        for proc in self.procs:
            proc.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("browser"))
    yield s
    s.stop()


def test_demo_token_validates_for_the_browser_surface(stack: Stack):
    req = urllib.request.Request(f"http://127.0.0.1:{stack.web_port}/demo/token", method="POST")
    with urllib.request.urlopen(req, timeout=5) as resp:
        body = json.loads(resp.read())
    assert validate(body["token"], stack.key, "client").origin == "client"
    assert body["relay_url"] == f"ws://127.0.0.1:{stack.relay_port}"


def test_the_page_talks_to_the_assistant(stack: Stack, tmp_path: Path):
    assert shutil.which("espeak-ng") and Path(CHROMIUM).exists(), (
        "the browser test needs Debian's chromium and espeak-ng: run `make browser-deps`"
    )
    from playwright.sync_api import sync_playwright

    wav = speech_wav(tmp_path / "speech.wav")
    args = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
        "--autoplay-policy=no-user-gesture-required",
        "--no-sandbox",
    ]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            page = browser.new_page()
            page.goto(f"http://localhost:{stack.web_port}/demo")
            page.click("#start")
            page.wait_for_function("window.demo.state === 'connected'", timeout=15000)
            page.wait_for_function(
                "window.demo.transcripts.some(t => t.who === 'assistant')", timeout=30000
            )
            page.wait_for_function("window.demo.audioChunksPlayed > 0", timeout=15000)
            demo = page.evaluate("window.demo")
            page.screenshot(path=str(ARTIFACTS / "demo.png"), full_page=True)
            page.click("#stop")
        finally:
            browser.close()
    session = wait_for(lambda: stack.sessions() and stack.sessions()[-1])
    assert session["audio_in_ms"] > 1000  # the microphone's audio reached "OpenAI"
    assert session["speech"], "the simulator's VAD heard the spoken sentence"
    said = [t["text"] for t in demo["transcripts"] if t["who"] == "assistant"]
    assert said[0] == session["responses"][0]["text"]
    benign = {"response_cancel_not_active", "conversation_already_has_active_response"}
    assert demo["bytesSent"] > 0
    assert [e for e in demo["errors"] if e.get("code") not in benign] == []
    assert (ARTIFACTS / "demo.png").stat().st_size > 0


def test_demo_is_not_served_outside_development(tmp_path: Path):
    port = free_port()
    env = base_env({"APP_ENV": "production", "REDIS_URL": REDIS_URL})
    proc = Proc("web-prod", [PYTHON, "-m", "webhooks", "--host", "127.0.0.1", "--port",
                             str(port)], env, tmp_path)  # fmt: skip
    try:
        wait_port(port, proc=proc.popen)
        for method, path in (("GET", "/demo"), ("POST", "/demo/token")):
            req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(req, timeout=5)
            assert err.value.code == 404
    finally:
        proc.stop()
