"""The tools and files the checks need: present, or (under CI=true) a failure."""

from __future__ import annotations

import importlib.util
import shutil

import pytest

from cli_helpers import SHARED

#: Executables the suite calls, and the Debian package or make target that provides each.
TOOLS = {"gcc": "gcc", "g++": "g++", "arm-none-eabi-gcc": "gcc-arm-none-eabi (make system-deps)",
         "ngspice": "ngspice (make system-deps)", "chromium": "chromium (make system-deps)"}


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_tool_is_installed(tool):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed: Debian package {TOOLS[tool]}")


def test_aesim_simba_is_importable():
    if importlib.util.find_spec("aesim") is None or importlib.util.find_spec("aesim.simba") is None:
        pytest.skip("aesim.simba is not installed (pip install -e '.[test]')")


def test_shared_directory_is_beside_the_repo():
    for part in ("seeds", "reference", "SIMBA_NOTES.md"):
        if not (SHARED / part).exists():
            pytest.skip(f"{SHARED / part} is missing: the seeds and SIMBA's reference project live in ../shared")
