"""Tools the setup tests need from the system (Chromium for the wizard's browser test, shellcheck for deploy.sh),
installed by `make browser` (apt-get, as root or with sudo). Missing: the test is skipped with one line saying how
to enable it; in CI (CI=true) a missing tool fails the test instead, so CI never goes green without running it."""

from __future__ import annotations

import os
from collections.abc import Mapping

import pytest

ENABLE = "run `make browser` as root or with sudo (apt-get install chromium chromium-driver shellcheck)"


def require(found: bool, what: str, environ: Mapping[str, str] = os.environ) -> None:
    """Skip (locally) or fail (CI=true) the calling test when `what` is not `found`."""
    if found:
        return
    message = f"{what} is not installed: to run this test, {ENABLE}"
    if environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)
