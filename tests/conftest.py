"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_helpers import REPO, SHARED


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"{SHARED} is missing: the tests read the seeds and the reference project from ../shared")
    return SHARED
