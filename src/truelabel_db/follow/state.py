"""The follower's figures as recorded in PostgreSQL, for ``capture status``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from truelabel_db.catalog import follow_state
from truelabel_db.postgres import connect


def follower_figures(target_url: str, source: Path) -> dict[str, Any] | None:
    with connect(target_url) as conn:
        found = follow_state.figures(conn, str(source.resolve()))
    return found[0].to_dict() if found else None
