"""The rows layer below the stages: legacy rows read by key, converted, applied by key.

Copy, follow, verify and rollback are siblings that share this layer; none of them imports
another's internals.
"""
