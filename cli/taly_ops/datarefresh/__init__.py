"""The data of `taly data refresh`: the rules file, the anonymiser, the tenant subset and the PII scanner.

Each module works on one psycopg connection to a database it may change (the scratch instance) or
only read (the scan of the target); none of them decides whether a refresh goes ahead: that is
operations/refresh.py. Personal data never leaves these functions: results carry table and column
names, counts and primary keys, never a value read from the data.
"""
