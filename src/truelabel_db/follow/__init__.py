"""Continuous sync (plan §2.2 phase 3): the changelog applied to PostgreSQL, exactly once."""

from truelabel_db.follow.follower import Follower, FollowOptions, FollowStats

__all__ = ["FollowOptions", "FollowStats", "Follower"]
