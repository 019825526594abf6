"""Shared fixtures. Unit tests live in tests/unit, tests that start real servers in tests/integration."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT
