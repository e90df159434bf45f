"""``keys`` and serve's refusal to listen unprotected: tokens shown once, never taken as arguments."""

from __future__ import annotations

import json

from tests.fix_cli import run_cli
from tests.fix_twin import Pair
from truelabel_db.errors import ExitCode


def test_a_key_is_created_listed_and_revoked_and_its_token_shown_once(fresh_pair: Pair) -> None:
    env = {"TRUELABEL_TARGET_URL": fresh_pair.url}
    created = run_cli("keys", "create", "--scope", "lab", "--label", "cli-test", "--json", env=env)
    assert created.code == 0, created.stderr
    key = json.loads(created.stdout)
    assert key["token"].startswith(f"tlk_{key['prefix']}_") and key["token"] not in created.stderr
    listed = run_cli("keys", "list", "--json", env=env)
    assert [k["prefix"] for k in json.loads(listed.stdout)] == [key["prefix"]]
    assert key["token"] not in listed.stdout + listed.stderr
    assert run_cli("keys", "revoke", key["prefix"], env=env).code == 0
    assert json.loads(run_cli("keys", "list", "--json", env=env).stdout) == []
    again = run_cli("keys", "revoke", key["prefix"], env=env)
    assert again.code == ExitCode.CONFIG and "no active key" in again.stderr


def test_an_unknown_scope_is_refused_in_one_line(fresh_pair: Pair) -> None:
    refused = run_cli("keys", "create", "--scope", "brand:acme", env={"TRUELABEL_TARGET_URL": fresh_pair.url})
    assert refused.code == ExitCode.CONFIG and "unknown scope" in refused.stderr and "Traceback" not in refused.stderr


def test_serve_refuses_to_listen_beyond_loopback_without_credentials(fresh_pair: Pair) -> None:
    refused = run_cli("serve", "--database", fresh_pair.url, "--host", "0.0.0.0", "--no-cache")
    assert refused.code == ExitCode.NO_CREDENTIALS
    assert "refusing to listen on 0.0.0.0" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1


def test_with_an_active_key_or_the_admin_token_serve_may_listen_beyond_loopback(fresh_pair: Pair) -> None:
    import pytest

    from tests.fix_auth import ADMIN, new_key
    from truelabel_db.errors import NoCredentialsError
    from truelabel_db.service import ServiceConfig
    from truelabel_db.service.server import refuse_unprotected

    refuse_unprotected(ServiceConfig(database=fresh_pair.url), "127.0.0.1")
    with pytest.raises(NoCredentialsError):
        refuse_unprotected(ServiceConfig(database=fresh_pair.url), "0.0.0.0")
    refuse_unprotected(ServiceConfig(database=str(fresh_pair.legacy), **ADMIN), "0.0.0.0")
    new_key(fresh_pair.url, ["service"])
    refuse_unprotected(ServiceConfig(database=fresh_pair.url), "0.0.0.0")
