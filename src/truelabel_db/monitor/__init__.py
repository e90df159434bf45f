"""The database's health, told truthfully (plan §6.1): one module per report, every report a
function of a connection returning plain values; ``snapshot`` runs them all, ``metrics`` serves
them to Prometheus."""

from truelabel_db.monitor.snapshot import REPORTS, Snapshot, take_snapshot

__all__ = ["REPORTS", "Snapshot", "take_snapshot"]
