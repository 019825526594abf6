"""Releases: the immutable release record, the per-environment catalogue of them, the ledger (what an
environment ran and why) and the per-environment lock, all objects in the environment's backups bucket.

record.py (the Release model, image references, ids), sources.py (what a release is made of: the images
file, the chart, its configuration revision, the migrations), stored.py (JSON objects read back as
untrusted input), catalogue.py, entries.py + ledger.py, lock.py, and actions.py (what `taly release` runs).
"""
