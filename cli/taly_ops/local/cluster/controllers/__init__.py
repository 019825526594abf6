"""The local cluster's controllers: Deployment, ReplicaSet, and the garbage collector's orphan check.

`manager.Controllers(store, clock).start()` runs them over the cluster's store; `.stop()` ends them.
"""
