"""Shared pytest configuration for the factorcore tests.

The test directory is on sys.path (pytest rootdir/conftest insertion), so the helper modules
``reference`` and ``helpers`` are importable from the test files.
"""

from __future__ import annotations

import faulthandler

import pytest

# A call into the native core that never returns cannot be interrupted from Python; this
# watchdog dumps every thread's traceback and ends the run instead of letting it hang.
HANG_TIMEOUT_S = 300


@pytest.fixture(autouse=True)
def _hang_watchdog():
    faulthandler.dump_traceback_later(HANG_TIMEOUT_S, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()
