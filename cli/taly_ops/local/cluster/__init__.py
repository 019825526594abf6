"""The local cluster: a Kubernetes API emulator, its controllers and its kubelet, in one process.

resources (the kinds served), store (objects, versions, watches), selectors, validation and defaults
(what the API server refuses and fills in), apierrors (metav1.Status) make the API's core; the server,
controllers and kubelet build on the store. See docs/local-cluster.md for what it does not model.
"""
