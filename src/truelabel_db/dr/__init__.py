"""Disaster recovery: the drill that proves the latest backup becomes a usable database in time."""
