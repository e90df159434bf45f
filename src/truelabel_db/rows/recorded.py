"""The mapping a migration runs with: the declared one, extended as its copy decided for drift.

Follow, verify, the cutover, rollback and the quarantine all rebuild it from the decision the
copy recorded, so every stage reads and writes exactly the tables and columns the copy did.
"""

from __future__ import annotations

import psycopg

from truelabel_db.catalog import copy_runs
from truelabel_db.schema.drift import MappingDecision, effective_mapping
from truelabel_db.schema.mapping import Mapping


def recorded_mapping(conn: psycopg.Connection) -> Mapping:
    copy_runs.require_migration(conn)
    return effective_mapping(MappingDecision.from_json(copy_runs.mapping_decision(conn)))
