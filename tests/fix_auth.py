"""Credentials for tests of the service: an admin token, and API keys made through the library."""

from __future__ import annotations

import secrets
from collections.abc import Iterable

import psycopg

from truelabel_db.catalog import api_keys
from truelabel_db.service.auth import admin_token_digest

ADMIN_TOKEN = f"test-admin-{secrets.token_urlsafe(24)}"
ADMIN = {"admin_token_sha256": admin_token_digest(ADMIN_TOKEN)}   # ServiceConfig options
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def new_key(url: str, scopes: Iterable[str], label: str | None = "test") -> str:
    """A fresh API key's token, created in the database at ``url`` by the catalog."""
    with psycopg.connect(url, autocommit=True) as conn:
        return api_keys.create(conn, scopes, label).token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
