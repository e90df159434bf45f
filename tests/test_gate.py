"""The gate the app honours, the primary it follows, and the fence for those who do not."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from tests.fix_legacy import insert
from truelabel_db.client import AppGate
from truelabel_db.cutover.fence import (
    MESSAGE,
    fence_installed,
    install_fence,
    remove_fence,
)
from truelabel_db.cutover.gate import Gate, GateError, connect_redis


def test_raising_and_lowering_the_gate_is_seen_by_the_app(redis_url: str) -> None:
    gate, app = Gate(connect_redis(redis_url)), AppGate(redis_url=redis_url)
    assert not app.is_read_only()
    gate.raise_()
    assert app.is_read_only()
    assert gate.lower() and not app.is_read_only()


def test_a_crashed_cutover_lifts_the_gate_by_itself(redis_url: str) -> None:
    Gate(connect_redis(redis_url)).raise_(ttl_ms=200)  # and never lowered
    app = AppGate(redis_url=redis_url)
    assert app.is_read_only()
    assert app.wait_writable(timeout=5)


def test_one_cutover_cannot_lower_anothers_gate(redis_url: str) -> None:
    first, second = Gate(connect_redis(redis_url)), Gate(connect_redis(redis_url))
    first.raise_()
    with pytest.raises(GateError, match="already raised"):
        second.raise_()
    assert not second.lower()
    assert AppGate(redis_url=redis_url).is_read_only()
    assert first.refresh() and first.lower()


def test_wait_writable_holds_a_write_until_the_gate_is_lowered(redis_url: str) -> None:
    gate = Gate(connect_redis(redis_url))
    gate.raise_()
    threading.Timer(0.2, gate.lower).start()
    app = AppGate(redis_url=redis_url)
    assert not app.wait_writable(timeout=0.01)
    assert app.wait_writable(timeout=10)


def test_the_primary_is_published_in_redis_and_in_a_file(redis_url: str, tmp_path: Path) -> None:
    file = tmp_path / "primary.json"
    gate = Gate(connect_redis(redis_url), primary_file=file)
    first = gate.publish_primary("sqlite", "/srv/app/prod.db")
    second = gate.publish_primary("postgresql", "postgresql://app@db:5432/truelabel")
    assert second.epoch == first.epoch + 1
    assert AppGate(redis_url=redis_url).current_primary() == second
    assert AppGate(primary_file=file).current_primary() == second


def test_unreachable_redis_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(GateError, match="unreachable"):
        connect_redis("redis://127.0.0.1:1/0")
    with pytest.raises(GateError, match="cannot read the cutover gate"):
        AppGate(redis_url="redis://127.0.0.1:1/0").is_read_only()


def test_the_fence_refuses_a_writer_that_ignores_the_gate(real_legacy: Path) -> None:
    install_fence(real_legacy)
    assert fence_installed(real_legacy)
    app = sqlite3.connect(real_legacy)
    for write in (lambda: insert(app, "users"),
                  lambda: app.execute("UPDATE products SET name = 'x'"),
                  lambda: app.execute("DELETE FROM laboratories")):
        with pytest.raises(sqlite3.IntegrityError, match="no longer the primary"):
            write()
    app.rollback()
    remove_fence(real_legacy)
    insert(app, "users")
    app.commit()
    assert MESSAGE.startswith("truelabel:")


def test_the_fence_can_be_lifted_by_hand_after_an_interrupted_cutover(real_legacy: Path, pg_url: str) -> None:
    from tests.fix_cli import run_cli

    assert run_cli("fence", "install", "--source", str(real_legacy)).code == 0
    assert "fence installed" in run_cli("fence", "status", "--source", str(real_legacy)).stderr
    assert run_cli("fence", "remove", "--source", str(real_legacy), "--target", pg_url).code == 0
    assert not fence_installed(real_legacy)
