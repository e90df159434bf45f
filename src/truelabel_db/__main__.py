"""``python -m truelabel_db`` is the ``truelabel-db`` command."""

from truelabel_db.cli.app import main

main()
