"""The README's "Develop" map is the tree: every folder it names exists, and every top-level folder, every
eksight sub-package and every test suite folder is named in it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def develop_map() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Develop") :]
    block = re.search(r"```\n(.*?)```", section, re.DOTALL)
    assert block, "the Develop section has no map"
    return [line.split()[0].rstrip("/") for line in block.group(1).splitlines() if line.strip()]


def tracked_dirs() -> set[str]:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return {str(Path(f).parent) for f in files.split()} | {
        "/".join(Path(f).parts[:n]) for f in files.split() for n in range(1, len(Path(f).parts))
    }


def test_every_named_path_exists() -> None:
    missing = [name for name in develop_map() if not (ROOT / name).exists()]
    assert not missing, f"the README names what the tree does not have: {missing}"


def test_every_top_level_folder_package_and_test_suite_is_named() -> None:
    named = set(develop_map())
    dirs = tracked_dirs()
    top = {d for d in dirs if "/" not in d and not d.startswith(".") and d != "."}
    packages = {d for d in dirs if re.fullmatch(r"eksight/[a-z_]+", d) and (ROOT / d / "__init__.py").exists()}
    suites = {d for d in dirs if re.fullmatch(r"tests/[a-z_]+", d)}
    unnamed = sorted(
        d for d in top | packages | suites if d not in named and not any(n.startswith(d + "/") for n in named)
    )
    assert not unnamed, f"folders missing from the README's Develop map: {unnamed}"
    assert packages <= named and suites <= named
