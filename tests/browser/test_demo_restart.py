"""A relay restart seen from the /demo page: SIGTERM closes the browser session with 1012
(service restart) and the page comes back by itself with a new token from POST /demo/token,
through the router (:class:`tests.voice.router.Router`) to the relay that is still up."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.conftest import demo_stack

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("redis_url")]


def test_the_page_reconnects_after_a_relay_restart(tmp_path: Path, browser):
    with demo_stack(tmp_path, relays=2) as stack:
        assert stack.router is not None
        page = browser.new_page()
        page.goto(f"http://localhost:{stack.web_port}/demo")
        page.click("#start")
        page.wait_for_function("window.demo.state === 'connected'", timeout=15000)
        stack.router.target = stack.relay_ports[1]  # the router stops sending to the stopping relay
        stack.terminate("relay")
        page.wait_for_function("window.demo.closeCode === 1012", timeout=15000)
        page.wait_for_function(
            "window.demo.reconnects === 1 && window.demo.state === 'connected'",
            timeout=20000,
        )
        demo = page.evaluate("window.demo")
        assert stack.wait_exit("relay", 15) == 0
        assert demo["closeReason"] == "service_restart"
        assert stack.router.routed[-1] == stack.relay_ports[1]  # on the relay that stayed up
