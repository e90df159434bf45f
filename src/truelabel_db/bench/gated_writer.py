"""An app that honours the cutover gate: it waits while the gate is up, then writes to
whichever database is the primary. Used by ``bench cutover`` and by the cutover tests.

Each write is a QR scan, the commonest write of True Label. A write the fence refuses (the
app passed the gate check a moment before the gate went up) is retried after waiting at the
gate again: it counts as retried, not failed. Any other error counts as failed.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from truelabel_db.client import AppGate


@dataclass
class WriterLedger:
    sqlite_writes: list[str] = field(default_factory=list)
    postgres_writes: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    retried: int = 0
    longest_wait_ms: float = 0.0

    @property
    def committed(self) -> list[str]:
        return self.sqlite_writes + self.postgres_writes


def gated_writer(legacy: Path, pg_url: str, gate: AppGate, rate: float, stop: threading.Event,
                 ledger: WriterLedger) -> None:
    app = sqlite3.connect(legacy, timeout=10, isolation_level=None)
    code = app.execute('SELECT "qrCode" FROM products WHERE "qrCode" IS NOT NULL LIMIT 1').fetchone()[0]
    pg: psycopg.Connection | None = None
    started, n = time.perf_counter(), 0
    while not stop.is_set():
        if rate and n >= (time.perf_counter() - started) * rate:
            time.sleep(0.0005)
            continue
        n += 1
        key, now_ms = str(uuid.uuid4()), int(time.time() * 1000)
        for attempt in range(3):
            waited = time.perf_counter()
            if not gate.wait_writable(timeout=10):
                ledger.failed.append(key)
                break
            ledger.longest_wait_ms = max(ledger.longest_wait_ms, (time.perf_counter() - waited) * 1000)
            primary = gate.current_primary()
            try:
                if primary is not None and primary.kind == "postgresql":
                    pg = pg or psycopg.connect(pg_url, autocommit=True)
                    pg.execute("INSERT INTO qr_code_access (id, qr_code, ip_address, user_agent, location, "
                               "accessed_at) VALUES (%s, %s, '10.1.1.1', 'app', '{}', to_timestamp(%s / 1000.0))",
                               (key, code, now_ms))
                    ledger.postgres_writes.append(key)
                else:
                    app.execute('INSERT INTO qr_code_accesses VALUES (?, ?, ?, ?, ?, ?)',
                                (key, code, "10.1.1.1", "app", "{}", now_ms))
                    ledger.sqlite_writes.append(key)
                break
            except sqlite3.IntegrityError as exc:
                if "no longer the primary" not in str(exc) or attempt == 2:
                    ledger.failed.append(key)
                    break
                ledger.retried += 1
            except (sqlite3.Error, psycopg.Error):
                ledger.failed.append(key)
                break
    app.close()
    if pg is not None:
        pg.close()
