"""Scaling reads out: streaming replicas made with pg_basebackup (``add``) and a router that
sends reads to a replica within a lag bound, else to the primary (``router``)."""

from truelabel_db.replicas.add import Replica, ReplicaError, add_replica
from truelabel_db.replicas.router import ReadRouter, ReplicaState

__all__ = ["ReadRouter", "Replica", "ReplicaError", "ReplicaState", "add_replica"]
