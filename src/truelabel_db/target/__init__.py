"""The target side: the optimized PostgreSQL schema and the declared legacy→target mapping."""
