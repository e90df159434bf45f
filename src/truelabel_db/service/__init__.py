"""The reference HTTP service over True Label's hot paths."""

from truelabel_db.service.app import create_app
from truelabel_db.service.config import ServiceConfig

__all__ = ["ServiceConfig", "create_app"]
