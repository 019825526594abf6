"""The offline plan: the real Pulumi program run under recording mocks (no CLI, no cloud)."""
