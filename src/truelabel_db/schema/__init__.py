"""The optimized PostgreSQL schema and the one declared mapping into it.

``mapping`` says where every legacy table and column goes and through which ``transforms``
(each written once, with its SQLite fast path, its Python repair and its reverse for
rollback); ``ddl`` applies the versioned SQL in ``sql/``; ``copytext`` is PostgreSQL's COPY
text format; ``roles`` the least-privilege runtime roles.
"""
