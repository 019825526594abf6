"""The local cluster's controllers: Deployment, ReplicaSet, and the garbage collector's orphan check.

`Controllers(store, clock).start()` runs them over the cluster's store; `.stop()` ends them.
"""

from .manager import Controllers

__all__ = ["Controllers"]
