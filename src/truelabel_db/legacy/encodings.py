"""How legacy values are actually encoded, as opposed to how Prisma meant them.

Prisma writes DateTime as epoch milliseconds, but long-lived files also hold epoch seconds from
raw SQL, ISO strings from scripts and ``CURRENT_TIMESTAMP`` text from SQLite defaults. The
analyzer reports these encodings and the copy repairs them; both use this one classifier, so
the report predicts exactly what the copy will do.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta, timezone

# The instants a True Label timestamp may plausibly hold: 1971-01-01 .. 2200-01-01.
# In milliseconds and in seconds these windows do not overlap, which is what makes a
# repair from seconds (or microseconds) certain rather than a guess.
MS_MIN = 31_536_000_000
MS_MAX = 7_258_118_400_000
S_MIN, S_MAX = MS_MIN // 1000, MS_MAX // 1000
US_MIN, US_MAX = MS_MIN * 1000, MS_MAX * 1000

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class TimestampEncoding(str, enum.Enum):
    EPOCH_MS = "epoch_ms"
    EPOCH_S = "epoch_s"
    EPOCH_US = "epoch_us"
    ISO_TEXT = "iso_text"
    SQLITE_TEXT = "sqlite_text"
    NUMERIC_TEXT = "numeric_text"
    OUT_OF_RANGE = "out_of_range"
    UNPARSEABLE = "unparseable"
    NULL = "null"


def classify_timestamp(raw: object) -> tuple[TimestampEncoding, datetime | None]:
    """Name the encoding of one legacy DateTime value and decode it when that is certain."""
    if raw is None:
        return TimestampEncoding.NULL, None
    if isinstance(raw, bool):
        return TimestampEncoding.UNPARSEABLE, None
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    if isinstance(raw, int):
        return _classify_number(raw)
    if isinstance(raw, str):
        return _classify_text(raw.strip())
    return TimestampEncoding.UNPARSEABLE, None


def _classify_number(value: int) -> tuple[TimestampEncoding, datetime | None]:
    if MS_MIN <= value <= MS_MAX:
        return TimestampEncoding.EPOCH_MS, EPOCH + timedelta(milliseconds=value)
    if S_MIN <= value <= S_MAX:
        return TimestampEncoding.EPOCH_S, EPOCH + timedelta(seconds=value)
    if US_MIN <= value <= US_MAX:
        return TimestampEncoding.EPOCH_US, EPOCH + timedelta(microseconds=value)
    return TimestampEncoding.OUT_OF_RANGE, None


def _classify_text(text: str) -> tuple[TimestampEncoding, datetime | None]:
    if text.lstrip("-").isdigit():
        encoding, value = _classify_number(int(text))
        if value is None:
            return encoding, None
        return TimestampEncoding.NUMERIC_TEXT, value
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return TimestampEncoding.UNPARSEABLE, None
    # SQLite's CURRENT_TIMESTAMP writes 'YYYY-MM-DD HH:MM:SS' in UTC, without a zone.
    naive = parsed.tzinfo is None
    value = parsed.replace(tzinfo=timezone.utc) if naive else parsed.astimezone(timezone.utc)
    if not (MS_MIN <= to_epoch_ms(value) <= MS_MAX):
        return TimestampEncoding.OUT_OF_RANGE, None
    sqlite_shape = naive and len(text) == 19 and text[10] == " "
    return (TimestampEncoding.SQLITE_TEXT if sqlite_shape else TimestampEncoding.ISO_TEXT), value


def to_epoch_ms(value: datetime) -> int:
    """Prisma's own encoding of a DateTime: integer milliseconds since the epoch, UTC."""
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
