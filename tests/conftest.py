"""Shared pytest configuration for the factorcore tests.

The test directory is on sys.path (pytest rootdir/conftest insertion), so the helper modules
``reference`` and ``helpers`` are importable from the test files.
"""

from __future__ import annotations

import faulthandler
import os
import shutil
from pathlib import Path

import pytest

# A call into the native core that never returns cannot be interrupted from Python; this
# watchdog dumps every thread's traceback and ends the run instead of letting it hang.
HANG_TIMEOUT_S = 300


@pytest.fixture(autouse=True)
def _hang_watchdog():
    faulthandler.dump_traceback_later(HANG_TIMEOUT_S, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def pytest_configure(config: pytest.Config) -> None:
    """With FACTORCORE_TEST_INSTALLED=1 (make test), refuse to run unless the tests see the
    installed wheel, not the source tree, and no Rust toolchain is on PATH."""
    if os.environ.get("FACTORCORE_TEST_INSTALLED") != "1":
        return
    import factorcore

    package = Path(factorcore.__file__).resolve()
    source = Path(__file__).resolve().parents[1] / "python"
    if source in package.parents:
        raise pytest.UsageError(f"factorcore is imported from the source tree ({package})")
    if shutil.which("cargo") or shutil.which("rustc"):
        raise pytest.UsageError("a Rust toolchain is on PATH; the wheel must work without one")
