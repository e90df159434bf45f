"""Point-in-time recovery: WAL archiving (``setup``), base backups, and recovery to a moment.

Built on PostgreSQL's own tools (``pg_basebackup``, ``pg_verifybackup``, recovery targets) and a
small archive command of ours; the README says why this rather than pgBackRest or WAL-G.
"""
