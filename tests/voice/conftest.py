"""The voice stacks of a test module, started once per module and stopped at its end.

``stack`` is the module's stack, configured by the module's ``STACK_OPTIONS`` (keyword
arguments of :class:`tests.voice.stack.VoiceStack`); a module needing a second one (two relays,
a short time cap) starts it through ``voice_stack(**options)``. Every test sees an empty
Realtime simulator on ``stack``, and a failed test prints the logs of the module's stacks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.conftest import REDIS_URL, failed_in_call
from tests.voice.stack import VoiceStack

#: The stacks each module started (by module name), for the failure logs.
_STARTED: dict[str, list[VoiceStack]] = {}


@pytest.fixture(scope="module")
def voice_stack(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Callable[..., VoiceStack]]:
    """Start a :class:`VoiceStack` with these options, ready when it returns."""
    module = request.module.__name__
    started = _STARTED.setdefault(module, [])

    def start(**options: object) -> VoiceStack:
        log_dir = tmp_path_factory.mktemp(module.rsplit(".", 1)[-1])
        s = VoiceStack(log_dir, REDIS_URL, **options).start()  # type: ignore[arg-type]
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()
    _STARTED.pop(module, None)


@pytest.fixture(scope="module")
def stack(voice_stack: Callable[..., VoiceStack], request: pytest.FixtureRequest) -> VoiceStack:
    return voice_stack(**getattr(request.module, "STACK_OPTIONS", {}))


@pytest.fixture(autouse=True)
def fresh_simulator(request: pytest.FixtureRequest) -> Iterator[None]:
    stack = request.getfixturevalue("stack") if "stack" in request.fixturenames else None
    if isinstance(stack, VoiceStack):  # a module may define a ``stack`` of another kind
        stack.realtime_reset()
        if stack.live_port:
            stack.live("reset")
    yield
    if failed_in_call(request):
        for s in _STARTED.get(request.module.__name__, []):
            print(s.logs())
