"""Optional extras: which third-party modules each one brings, and the error when one is missing.

The core install migrates, follows, verifies, cuts over, rolls back, backs up to a folder,
monitors and maintains. Three parts serve one purpose each and need packages nothing else
needs, so they come as extras (``pip install 'truelabel-db[serve]'``):

- ``serve``: FastAPI and uvicorn, for the reference HTTP service (``serve``, ``bench load``);
- ``s3``: boto3, for backup repositories on S3-compatible storage (``s3://`` repositories);
- ``bench``: aiohttp, the load generator's HTTP client (``bench load``).

A command that needs a missing extra stops with one line naming it (:class:`MissingExtraError`,
exit code ``MISSING_EXTRA``) before importing anything from it, instead of a traceback.
"""

from __future__ import annotations

import importlib.util

from truelabel_db.errors import ExitCode, TrueLabelError

EXTRAS: dict[str, tuple[str, ...]] = {
    "serve": ("fastapi", "uvicorn"),
    "s3": ("boto3",),
    "bench": ("aiohttp",),
}


class MissingExtraError(TrueLabelError, ImportError):
    """An optional extra is not installed; also an ImportError, for code that tests imports."""

    exit_code: int = ExitCode.MISSING_EXTRA


def missing_modules(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be imported here."""
    return [name for name in EXTRAS[extra] if importlib.util.find_spec(name) is None]


def require(extra: str, feature: str) -> None:
    """Raise :class:`MissingExtraError` unless every module of ``extra`` can be imported."""
    if missing_modules(extra):
        raise MissingExtraError(f"{feature} needs the {extra} extra: pip install 'truelabel-db[{extra}]'")
