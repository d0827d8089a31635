"""Shared pytest configuration: hypothesis profiles and the test data directory.

Pick a profile with ``HYPOTHESIS_PROFILE=ci pytest``; the default one keeps a
plain ``pytest`` run short on a small machine.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# deadline=None: the first call into the extension and the GIL-free batch paths
# have timing jitter on a shared 2-core box that says nothing about correctness.
settings.register_profile("default", deadline=None, max_examples=200)
# CI: fresh randomness each run, and a reproduction blob for any failure.
settings.register_profile("ci", deadline=None, max_examples=200, derandomize=False, print_blob=True)
# Thorough: many more examples, for a run by hand before a release.
settings.register_profile("thorough", deadline=None, max_examples=3000, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

DATA_DIR = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Directory of the small real-data samples the tests read (tests/data)."""
    return DATA_DIR
