"""The initial copy (plan §2.2 phase 2): snapshot, parallel COPY, post-data, reconciliation."""

from truelabel_db.copy.runner import CopyOptions, CopyResult, TableSummary, run_copy

__all__ = ["CopyOptions", "CopyResult", "TableSummary", "run_copy"]
