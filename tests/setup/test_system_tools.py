"""A missing system tool skips its test locally, with how to enable it, and fails it in CI; `make browser`
without root or apt-get says how to enable those tests instead of failing `make test`."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.setup.system_tools import ENABLE, require

ROOT = Path(__file__).resolve().parents[2]


def test_a_missing_tool_skips_with_how_to_enable_it() -> None:
    with pytest.raises(pytest.skip.Exception, match="Chromium is not installed") as skipped:
        require(False, "Chromium", environ={})
    assert ENABLE in str(skipped.value)


@pytest.mark.parametrize("ci", ["true", "TRUE"])
def test_a_missing_tool_fails_in_ci(ci: str) -> None:
    with pytest.raises(pytest.fail.Exception, match="Chromium is not installed"):
        require(False, "Chromium", environ={"CI": ci})


def test_a_present_tool_runs_the_test() -> None:
    require(True, "Chromium", environ={"CI": "true"})  # neither skips nor fails


def test_make_browser_without_root_or_apt_says_in_one_line_how_to_enable() -> None:
    """`make browser` (part of `make test`) as a user without sudo on a machine without apt-get: no failure,
    one line saying what to run."""
    tools = Path(tempfile.mkdtemp(prefix="eksight-no-apt-"))  # readable by `nobody` (pytest's tmp_path is not)
    try:
        tools.chmod(0o755)
        for name in ("make", "bash", "sh", "id", "env"):
            (tools / name).symlink_to(shutil.which(name) or f"/bin/{name}")
        command = ["make", "-s", "-C", str(ROOT), "browser"]
        if os.geteuid() == 0:  # become an ordinary user for the test
            runuser = shutil.which("runuser")
            if runuser is None:
                pytest.skip("running as root without runuser: cannot drop root for this test")
            command = [runuser, "-u", "nobody", "--", *command]
        done = subprocess.run(command, env={"PATH": str(tools)}, capture_output=True, text=True, timeout=60)
    finally:
        shutil.rmtree(tools)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("make browser: skipped"), done.stdout
    assert "sudo apt-get install chromium chromium-driver shellcheck" in lines[0]
