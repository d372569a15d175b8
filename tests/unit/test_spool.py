"""The webhook spool: durable files, ordered drain, claims safe across processes."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from webhooks.queue import STALE_CLAIM_SECONDS, Spool


class FakeBroker:
    """Stands in for Celery's producer: records sends, fails while ``down``."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.down = False

    def send_task(self, name: str, args: list, **_: Any) -> None:
        if self.down:
            raise ConnectionError("broker down")
        self.sent.append(args[0])


def test_put_is_durable_json(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    path = spool.put({"MessageSid": "IM1", "Body": "hi"})
    assert json.loads(path.read_text()) == {"MessageSid": "IM1", "Body": "hi"}
    assert not list((tmp_path / "spool").glob("*.tmp"))


def test_drain_in_order_and_stops_when_broker_down(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for i in range(3):
        spool.put({"MessageSid": f"IM{i}"})
    broker = FakeBroker()
    broker.down = True
    assert spool.drain(broker) == 0  # type: ignore[arg-type]
    assert len(spool.pending()) == 3  # nothing lost
    broker.down = False
    assert spool.drain(broker) == 3  # type: ignore[arg-type]
    assert [e["MessageSid"] for e in broker.sent] == ["IM0", "IM1", "IM2"]
    assert spool.pending() == []


def test_stale_claims_are_released(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    path = spool.put({"MessageSid": "IM9"})
    claimed = path.with_name(path.name + ".claimed-99999")
    os.replace(path, claimed)
    old = time.time() - STALE_CLAIM_SECONDS - 5
    os.utime(claimed, (old, old))
    broker = FakeBroker()
    assert spool.drain(broker) == 1  # type: ignore[arg-type]
    [sent] = broker.sent
    assert sent["MessageSid"] == "IM9" and sent["_inbox_id"]  # remembered until answered


def test_unreadable_file_is_kept_aside(tmp_path: Path) -> None:
    (tmp_path / "00000000000000000001-x.json").write_text("{not json")
    broker = FakeBroker()
    assert Spool(tmp_path).drain(broker) == 0  # type: ignore[arg-type]
    assert list(tmp_path.glob("*.bad"))


def test_spool_is_owner_only(tmp_path) -> None:
    """Spooled events hold customers' numbers and texts."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        spool = Spool(tmp_path / "spool")
        path = spool.put({"MessageSid": "IM9", "Body": "my gate code is 1234"})
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "spool").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
