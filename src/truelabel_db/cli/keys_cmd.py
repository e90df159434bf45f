"""``keys create | list | revoke``: the reference service's API keys.

Run as the schema's owner (``TRUELABEL_TARGET_URL``). The token is printed once, on stdout,
when the key is created, and never again: it is not stored (only its digest), not logged, and
no command takes it as an argument. A key is named by its public prefix.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from truelabel_db.cli.options import JsonOption, TargetOption
from truelabel_db.cli.output import emit_json, err
from truelabel_db.errors import ConfigError

keys_app = typer.Typer(no_args_is_help=True, help="API keys of the reference service (serve).")


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def create(
    scope: Annotated[list[str], typer.Option("--scope", help=(
        "admin, service, lab or brand:<brand user id>; repeat for several."))],
    label: Annotated[Optional[str], typer.Option(help="Who or what the key is for (shown by list).")] = None,
    target: TargetOption = None,
    json_out: JsonOption = False,
) -> None:
    """Create a key and print its token once (store it now: it cannot be shown again)."""
    from truelabel_db.catalog import api_keys
    from truelabel_db.postgres import connect, resolve_target

    with connect(resolve_target(target), autocommit=True) as conn:
        created = api_keys.create(conn, scope, label)
    if json_out:
        emit_json({**created.key.to_dict(), "token": created.token})
    else:
        typer.echo(created.token)
    err.print(f"key {created.key.prefix} ({', '.join(created.key.scopes)}) created; "
              "its token was printed once and is not stored")


@keys_app.command("list")
def list_(
    target: TargetOption = None,
    all_: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    json_out: JsonOption = False,
) -> None:
    """The keys, by prefix, scopes and label (never a token)."""
    from truelabel_db.catalog import api_keys
    from truelabel_db.postgres import connect, resolve_target

    with connect(resolve_target(target)) as conn:
        found = api_keys.list_keys(conn, include_revoked=all_)
    if json_out:
        emit_json([k.to_dict() for k in found])
        return
    view = Table("prefix", "scopes", "label", "created", "revoked")
    for k in found:
        view.add_row(k.prefix, ", ".join(k.scopes), k.label or "", k.created_at.isoformat(timespec="seconds"),
                     k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else "")
    err.print(view)
    err.print(f"{len(found)} key(s)")


@keys_app.command("revoke")
def revoke(
    prefix: Annotated[str, typer.Argument(help="The key's prefix (see list).")],
    target: TargetOption = None,
) -> None:
    """Revoke a key: refused from then on (by a running service within --auth-cache-seconds)."""
    from truelabel_db.catalog import api_keys
    from truelabel_db.postgres import connect, resolve_target

    with connect(resolve_target(target), autocommit=True) as conn:
        if not api_keys.revoke(conn, prefix):
            raise ConfigError(f"no active key with prefix {prefix!r} (see `truelabel-db keys list`)")
    err.print(f"key {prefix} revoked")
