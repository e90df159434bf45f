"""``backup run | list | verify | prune | restore-legacy`` and ``restore``: encrypted, verified backups."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.table import Table

from truelabel_db.cli.options import JsonOption, TargetOption
from truelabel_db.cli.output import emit_json, err

if TYPE_CHECKING:
    from truelabel_db.backup.repository import Listing

backup_app = typer.Typer(no_args_is_help=True, help="Encrypted backups, proven restorable.")
RepoOption = Annotated[Optional[str], typer.Option(
    "--to", "--repo", envvar="TRUELABEL_BACKUP_REPO", show_envvar=True,
    help="Backup repository: a folder or s3://bucket/prefix.")]
KeyFileOption = Annotated[Optional[Path], typer.Option(
    envvar="TRUELABEL_BACKUP_KEY_FILE", show_envvar=True,
    help="File holding the key (base64 of 32 bytes); else TRUELABEL_BACKUP_KEY. Never on the command line.")]
WorkDirOption = Annotated[Optional[Path], typer.Option(help="Staging folder (default: the system's temp).")]


def register(app: typer.Typer) -> None:
    app.add_typer(backup_app, name="backup")
    app.command("restore")(restore)


@backup_app.command("run")
def run(
    target: TargetOption = None,
    to: RepoOption = None,
    kind: Annotated[str, typer.Option(help="full (PostgreSQL, pg_dump) or sqlite (the legacy file).")] = "full",
    source: Annotated[Optional[Path], typer.Option(help="The legacy SQLite file, for --kind sqlite.")] = None,
    jobs: Annotated[int, typer.Option(min=1, help="pg_dump parallel jobs.")] = 4,
    compress: Annotated[int, typer.Option(min=0, max=9, help="gzip level of the dump.")] = 6,
    key_file: KeyFileOption = None,
    notify_cmd: Annotated[Optional[str], typer.Option(envvar="TRUELABEL_NOTIFY_COMMAND",
                                                      help="Command run with the outcome as JSON on stdin.")] = None,
    work_dir: WorkDirOption = None,
    json_out: JsonOption = False,
) -> None:
    """Take a backup: dump (or SQLite snapshot), encrypt, checksum, store, manifest last."""
    from truelabel_db.backup import BackupError, load_key, open_storage
    from truelabel_db.backup.notify import Notifier
    from truelabel_db.postgres import resolve_target

    key = load_key(key_file)
    storage = open_storage(to, create=True)
    notifier = Notifier.from_env(notify_cmd, warn=lambda line: err.print(f"[yellow]warning:[/] {line}"))
    if kind == "sqlite":
        from truelabel_db.backup.legacy import backup_legacy

        if source is None:
            raise BackupError("--kind sqlite needs --source (the legacy SQLite file)")
        manifest = backup_legacy(source, storage, key, work_dir=work_dir, notifier=notifier)
    elif kind == "full":
        from truelabel_db.backup.logical import BackupOptions, run_backup

        options = BackupOptions(jobs=jobs, compress_level=compress, work_dir=work_dir)
        manifest = run_backup(resolve_target(target), storage, key, options, notifier)
    else:
        raise BackupError(f"unknown backup kind {kind!r}: use full or sqlite")
    if json_out:
        emit_json({"id": manifest.id, "kind": manifest.kind, "stored_bytes": manifest.stored_bytes,
                   "files": len(manifest.files), "rows": sum(manifest.row_counts.values())})
    err.print(f"[green]backup {manifest.id}[/] in {storage.describe()}: {len(manifest.files)} files, "
              f"{manifest.stored_bytes / 1e6:,.1f} MB, {sum(manifest.row_counts.values()):,} rows")


@backup_app.command("list")
def list_(to: RepoOption = None, key_file: KeyFileOption = None, json_out: JsonOption = False) -> None:
    """Every backup, complete or not, with its size and its last verification; with the key, seals
    are checked too. Exits 22 when a backup fails its checks."""
    from truelabel_db.backup import open_storage
    from truelabel_db.backup.keys import key_configured, load_key
    from truelabel_db.backup.repository import list_backups

    key = load_key(key_file) if key_configured(key_file) else None
    listings = list_backups(open_storage(to), key)
    if json_out:
        emit_json([b.to_dict() for b in listings])
    else:
        err.print(_listing_table(listings, checked=key is not None))
    _refuse_damaged(listings)


def _listing_table(listings: list[Listing], *, checked: bool) -> Table:
    view = Table("id", "kind", "created", "MB", "rows", "verified",
                 caption=None if checked else "seals not checked: no key given")
    for b in listings:
        d = b.to_dict()
        if b.problem:
            view.add_row(b.id, "[bold red]fails its checks[/]", "-", "-", "-", "-")
        elif not b.complete:
            view.add_row(b.id, "[yellow]incomplete[/]", "-", "-", "-", "-")
        else:
            view.add_row(b.id, d["kind"], d["created_at"][:19], f"{d['stored_bytes'] / 1e6:,.1f}",
                         f"{d['rows']:,}", _verified(d["verified"]))
    return view


def _verified(record: dict[str, object] | None) -> str:
    if record is None:
        return "-"
    text = "[green]ok[/]" if record["ok"] else "[bold red]FAILED[/]"
    return text if record["sealed"] else text + " (unchecked)"


def _refuse_damaged(listings: list[Listing]) -> None:
    from truelabel_db.backup import BackupIntegrityError

    damaged = [b for b in listings if b.problem]
    if damaged:
        raise BackupIntegrityError(f"{len(damaged)} backup(s) fail their checks: "
                                   + "; ".join(str(b.problem) for b in damaged))


@backup_app.command("verify")
def verify(
    backup_id: Annotated[Optional[str], typer.Argument(
        help="The backup's id (see `backup list`); default: the newest complete full backup.")] = None,
    to: RepoOption = None,
    target: Annotated[Optional[str], typer.Option(
        envvar="TRUELABEL_TARGET_URL", help="Server for the scratch database of the test restore.")] = None,
    key_file: KeyFileOption = None,
    jobs: Annotated[int, typer.Option(min=1)] = 2,
    work_dir: WorkDirOption = None,
    json_out: JsonOption = False,
) -> None:
    """Checksums, decryption, and a real test restore whose rows must match the manifest."""
    from truelabel_db.backup import load_key, open_storage
    from truelabel_db.backup.repository import latest_complete
    from truelabel_db.backup.verify import verify_backup

    storage, key = open_storage(to), load_key(key_file)
    backup_id = backup_id or latest_complete(storage, key=key).id
    result = verify_backup(storage, backup_id, key, target, jobs=jobs, work_dir=work_dir)
    if json_out:
        emit_json(result.__dict__)
    err.print(f"[green]backup {backup_id} verified[/] in {result.seconds:.1f}s: {result.detail}")


@backup_app.command("prune")
def prune(
    to: RepoOption = None,
    keep_days: Annotated[int, typer.Option(min=0, help="Keep complete backups this many days (plan: 4 weeks).")] = 28,
    keep_at_least: Annotated[int, typer.Option(min=1, help="Always keep this many newest backups of each kind.")] = 1,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan, delete nothing.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Delete backups past retention (and incomplete ones older than a day)."""
    from truelabel_db.backup import open_storage
    from truelabel_db.backup.retention import RetentionPolicy
    from truelabel_db.backup.retention import prune as run

    plan = run(open_storage(to), RetentionPolicy(keep_days, keep_at_least), dry_run=dry_run)
    if json_out:
        emit_json(plan.to_dict())
    verb = "would delete" if dry_run else "deleted"
    for backup_id in plan.delete:
        err.print(f"{verb} {backup_id}: {plan.reasons[backup_id]}")
    err.print(f"{verb} {len(plan.delete)}, kept {len(plan.keep)}")


@backup_app.command("restore-legacy")
def restore_legacy(
    backup_id: Annotated[str, typer.Argument()],
    destination: Annotated[Path, typer.Option("--to-file", help="New path for the SQLite file.")],
    to: RepoOption = None,
    key_file: KeyFileOption = None,
) -> None:
    """Write a backed-up legacy SQLite file to a new path."""
    from truelabel_db.backup import BackupIntegrityError, load_key, open_storage
    from truelabel_db.backup.legacy import restore_legacy as run

    result = run(open_storage(to), backup_id, destination, load_key(key_file))
    if result.mismatches:
        raise BackupIntegrityError(f"restored file differs from the manifest in {', '.join(result.mismatches)}")
    err.print(f"[green]restored[/] {destination}: {sum(result.row_counts.values()):,} rows")


def restore(
    backup_id: Annotated[str, typer.Argument(help="The backup's id (see `backup list`).")],
    target: TargetOption = None,
    to: RepoOption = None,
    key_file: KeyFileOption = None,
    jobs: Annotated[int, typer.Option(min=1, help="pg_restore parallel jobs.")] = 4,
    work_dir: WorkDirOption = None,
    json_out: JsonOption = False,
) -> None:
    """Restore a backup into an empty (or new) database and check every table's rows."""
    from truelabel_db.backup import (
        BackupIntegrityError,
        load_key,
        open_storage,
        restore_backup,
    )
    from truelabel_db.postgres import resolve_target

    key = load_key(key_file)
    result = restore_backup(open_storage(to), backup_id, resolve_target(target), key, jobs=jobs, work_dir=work_dir)
    if json_out:
        emit_json(result.to_dict())
    if not result.ok:
        raise BackupIntegrityError(f"restored rows differ from the manifest: {', '.join(result.mismatches)}")
    err.print(f"[green]restored {backup_id}[/] into {result.target} in {result.seconds:.1f}s: "
              f"{sum(result.row_counts.values()):,} rows, every table as in the manifest")
