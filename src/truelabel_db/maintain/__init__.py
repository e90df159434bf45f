"""Maintenance that never blocks the app (plan §6.2): jobs, their runner, their schedule."""

from truelabel_db.maintain.jobs import JOBS, job_named
from truelabel_db.maintain.refresh import refresh_dashboard
from truelabel_db.maintain.runner import JobResult, Limits, MaintenanceError, run_job

__all__ = ["JOBS", "JobResult", "Limits", "MaintenanceError", "job_named", "refresh_dashboard", "run_job"]
