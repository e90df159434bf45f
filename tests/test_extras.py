"""Optional extras: the core install does the migration; serve, s3 and bench name their extra."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.fix_cli import run_cli
from tests.fix_install import CoreInstall
from truelabel_db.errors import ExitCode
from truelabel_db.extras import EXTRAS, MissingExtraError, require


def test_the_core_install_really_lacks_the_extras(core_install: CoreInstall) -> None:
    probe = "import importlib.util as u; print(sorted(m for m in %r if u.find_spec(m)))" % sorted(core_install.absent)
    found = subprocess.run([*core_install.python, "-c", probe], capture_output=True, text=True, env=core_install.env)
    assert found.returncode == 0 and found.stdout.strip() == "[]", found.stderr


def test_the_core_install_generates_and_analyzes(core_install: CoreInstall, tmp_path: Path) -> None:
    legacy = tmp_path / "legacy.db"
    made = run_cli("generate", str(legacy), "--scale", "0.01", python=core_install.python, env=core_install.env)
    assert made.code == 0, made.stderr
    analyzed = run_cli("analyze", str(legacy), "--json", python=core_install.python, env=core_install.env)
    assert analyzed.code == 0, analyzed.stderr


@pytest.mark.parametrize(("args", "extra"), [
    (("serve", "--database", "legacy.db"), "serve"),
    (("bench", "load", "--scale", "0.01"), "bench"),
    (("backup", "list", "--to", "s3://bucket/backups"), "s3"),
])
def test_a_command_needing_a_missing_extra_says_which_in_one_line(core_install: CoreInstall, args: tuple[str, ...],
                                                                  extra: str) -> None:
    result = run_cli(*args, python=core_install.python, env=core_install.env)
    assert result.code == ExitCode.MISSING_EXTRA, result.stderr
    assert result.stderr.strip().splitlines() == [
        result.stderr.strip().splitlines()[0]] and "Traceback" not in result.stderr
    assert f"needs the {extra} extra: pip install 'truelabel-db[{extra}]'" in result.stderr


def test_importing_the_service_without_its_extra_is_an_import_error_naming_it(core_install: CoreInstall) -> None:
    probe = ("from truelabel_db.extras import MissingExtraError\n"
             "try:\n    import truelabel_db.service\n"
             "except ImportError as exc:\n    print(type(exc).__name__, exc)\n")
    result = subprocess.run([*core_install.python, "-c", probe], capture_output=True, text=True, env=core_install.env)
    assert result.stdout.strip() == ("MissingExtraError truelabel_db.service needs the serve extra: "
                                     "pip install 'truelabel-db[serve]'"), result.stderr


def test_every_extra_is_installed_for_the_tests() -> None:
    for extra in EXTRAS:
        require(extra, extra)   # [test] pulls them all in


def test_the_error_is_also_an_import_error() -> None:
    with pytest.raises(ImportError):
        raise MissingExtraError("x")
