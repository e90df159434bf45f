"""The layered cache: memory, Redis, PostgreSQL; invalidation rules; warming; hit ratios."""

from truelabel_db.cache.layered import CacheConfig, LayeredCache

__all__ = ["CacheConfig", "LayeredCache"]
