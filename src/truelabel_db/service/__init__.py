"""The reference HTTP service over True Label's hot paths (the ``serve`` extra: FastAPI, uvicorn)."""

from truelabel_db.extras import require

require("serve", "truelabel_db.service")

from truelabel_db.service.app import create_app  # noqa: E402 (after the check that it can be imported)
from truelabel_db.service.config import ServiceConfig  # noqa: E402

__all__ = ["ServiceConfig", "create_app"]
