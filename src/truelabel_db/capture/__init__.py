"""Change capture from SQLite (plan §2.2 phase 1): triggers into a changelog inside the file."""

from truelabel_db.capture.changelog import (
    CaptureStatus,
    capture_status,
    install_capture,
    remove_capture,
)
from truelabel_db.catalog.changelog import CHANGELOG_TABLE

__all__ = ["CHANGELOG_TABLE", "CaptureStatus", "capture_status", "install_capture", "remove_capture"]
