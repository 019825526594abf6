"""The Taly estate as a Pulumi program: typed stack config, components, the environment contract.

Importing this package is cheap (no Pulumi): `config`, `stackfile`, `catalog` and `contract`
are shared with the ops CLI; `program` and `components` need Pulumi.
"""
