"""Shared pytest configuration: hypothesis profiles and the test data directory.

Pick a profile with ``HYPOTHESIS_PROFILE=explore pytest``; the default one keeps a
plain ``pytest`` run short and deterministic on a small machine.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# deadline=None: the first call into the extension and the GIL-free batch paths
# have timing jitter on a shared 2-core box that says nothing about correctness.
# Default (the README's test command, which CI runs): derandomized, so a
# submission's gate is the same run every time and never depends on luck; the
# examples still come from hypothesis' generators and shrink on failure.
settings.register_profile("default", deadline=None, max_examples=200, derandomize=True, print_blob=True)
# Explore: fresh randomness each run, for finding new counterexamples by hand.
settings.register_profile("explore", deadline=None, max_examples=200, print_blob=True)
# Thorough: many more random examples, for a run by hand before a release.
settings.register_profile("thorough", deadline=None, max_examples=3000, print_blob=True)
# Mutation: derandomized and short, for the one run per mutant of `mutmut run`
# (docs/mutation-python.md); the example-based mutation tests carry the kills.
settings.register_profile("mutation", deadline=None, max_examples=25, derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

DATA_DIR = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Directory of the small real-data samples the tests read (tests/data)."""
    return DATA_DIR
