"""The tool's own state: every ``truelabel_meta`` table, and the SQLite changelog's format.

Like pgcopydb's catalog, one module owns each piece of state and exposes named operations on it
(``copy_runs.create_run``, ``follow_state.advance``, ``quarantine.resolve_keys``,
``changelog.after``); no other module writes SQL against these tables, and a test holds the
package to that by looking for their names elsewhere. State is written in the same transaction
as the data it describes, which is what makes every step resumable after a crash.
"""
