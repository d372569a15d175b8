"""The /demo page in Debian's headless Chromium, with a fake microphone speaking a WAV made by
espeak-ng, through a real web process and relay to the Realtime simulator.

The page is loaded from ``http://localhost:<port>`` (a secure context, so the microphone is
allowed, and an Origin the relay admits in development).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from common.tokens import validate
from sandbox import services
from sandbox.services import ROOT, clean_environment, free_port
from sandbox.stack import ProcessStack
from tests.conftest import REDIS_URL
from tests.support import wait_for
from tests.voice.stack import VoiceStack

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("redis_url")]
ARTIFACTS = ROOT / "var" / "artifacts"


def test_demo_token_validates_for_the_browser_surface(stack: VoiceStack):
    req = urllib.request.Request(f"http://127.0.0.1:{stack.web_port}/demo/token", method="POST")
    with urllib.request.urlopen(req, timeout=5) as resp:
        body = json.loads(resp.read())
    assert validate(body["token"], stack.key, "client").origin == "client"
    assert body["relay_url"] == f"ws://127.0.0.1:{stack.relay_port}"


def test_the_page_talks_to_the_assistant(stack: VoiceStack, browser):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
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
    session = wait_for(lambda: stack.sessions() and stack.sessions()[-1])
    assert session["audio_in_ms"] > 1000  # the microphone's audio reached "OpenAI"
    assert session["speech"], "the simulator's VAD heard the spoken sentence"
    said = [t["text"] for t in demo["transcripts"] if t["who"] == "assistant"]
    assert said[0] == session["responses"][0]["text"]
    benign = {"response_cancel_not_active", "conversation_already_has_active_response"}
    assert demo["bytesSent"] > 0
    assert [e for e in demo["errors"] if e.get("code") not in benign] == []
    assert (ARTIFACTS / "demo.png").stat().st_size > 0


def test_the_page_asks_for_the_configured_transcription(stack: VoiceStack, browser):
    """The page sends the transcription /demo/token hands it (the relay's config), so a browser
    session transcribes the speaker with the model and keywords a call gets."""
    req = urllib.request.Request(f"http://127.0.0.1:{stack.web_port}/demo/token", method="POST")
    with urllib.request.urlopen(req, timeout=5) as resp:
        configured = json.loads(resp.read())["transcription"]
    assert configured == {"model": "gpt-live-transcribe", "keywords": ["GateFrames"]}
    page = browser.new_page()
    page.goto(f"http://localhost:{stack.web_port}/demo")
    page.click("#start")
    page.wait_for_function("window.demo.state === 'connected'", timeout=15000)
    applied = wait_for(
        lambda: (
            stack.sessions()[-1]["events_received"].get("session.update", 0) >= 2
            and stack.sessions()[-1]
        )
    )
    page.click("#stop")
    assert applied["errors"] == []  # both updates (the relay's, the page's) were accepted
    assert applied["session"]["audio"]["input"]["transcription"] == configured


def test_demo_is_not_served_outside_development(tmp_path: Path):
    env = clean_environment({"APP_ENV": "production", "REDIS_URL": REDIS_URL})
    with ProcessStack(tmp_path, env) as production:
        port = free_port()
        production.run(services.web(port, "web-prod"))
        for method, path in (("GET", "/demo"), ("POST", "/demo/token")):
            req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(req, timeout=5)
            assert err.value.code == 404
