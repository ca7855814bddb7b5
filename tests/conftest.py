"""Shared fixtures: paths of the committed data fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "data" / "fixtures"


@pytest.fixture
def aims_tiny() -> Path:
    return FIXTURES / "aims_tiny" / "annotations.json"


@pytest.fixture
def syrip_tiny() -> Path:
    return FIXTURES / "syrip_tiny"
