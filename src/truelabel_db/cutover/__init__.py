"""Cutover (plan §2.2 phase 4): the gate the app honours, the fence in SQLite, the switch."""
