"""What the browser tests share: the demo's stack (a development web, relay and the Realtime
simulator, from :class:`tests.voice.stack.VoiceStack`) and one headless Chromium launch with
a fake microphone speaking an espeak-ng sentence."""

from __future__ import annotations

import shutil
import subprocess
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REDIS_URL
from tests.voice.stack import VoiceStack

CHROMIUM = "/usr/bin/chromium"


def demo_stack(log_dir: Path, **options: Any) -> VoiceStack:
    """A started stack serving ``/demo`` (APP_ENV=development); the simulator in real time."""
    return VoiceStack(
        log_dir, REDIS_URL, env={"APP_ENV": "development"}, realtime_speed=None, **options
    ).start()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoiceStack]:
    s = demo_stack(tmp_path_factory.mktemp("browser"))
    yield s
    s.stop()


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


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Debian's headless Chromium whose microphone speaks :func:`speech_wav` (a
    ``playwright`` Browser, closed after the test)."""
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
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            yield chromium
        finally:
            chromium.close()
