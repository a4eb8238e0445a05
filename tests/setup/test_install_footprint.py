"""What deploy.sh installs in CloudShell: pinned with hashes (the lock files) and small enough for its 1 GB home.

The sizes are computed, not installed: from the RECORD files of the distributions in this test's venv (the
dev venv of `make install`), for exactly the distributions requirements-deploy.lock lists, without their
bytecode (deploy.sh installs with --no-compile), counted in disk blocks; plus the directories `make install`
built with the same pip flags as deploy.sh (build/lambda-deps) and node_modules/aws-cdk (all deploy.sh's
`npm ci --omit=dev` installs). A real `pip install --no-compile --require-hashes -r requirements-deploy.lock`
into a fresh venv took 312 MiB on disk; this computation gives the same within the allowance for the venv's
own pip and setuptools (VENV_TOOLS_MIB).
"""

from __future__ import annotations

import importlib.metadata
import io
import re
import tarfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from eksight.tools.setup import bundle

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_SCRIPT = (ROOT / "eksight" / "tools" / "setup" / "deploy.sh").read_text()
MIB = 2**20
HOME_MIB = 1024  # CloudShell's persistent home directory: 1 GB
ROOM_TO_SPARE_MIB = 300  # free in that home after a first deploy, for the user's own files
VENV_TOOLS_MIB = 25  # pip and setuptools that `python -m venv` puts into every venv (measured: 21 MiB)
CONFIG = {"regions": {"us-east-1": {"clusters": ["prod-api"]}}}


def script_constant(name: str) -> int:
    """A MiB figure deploy.sh refuses to start without (its disk space check)."""
    match = re.search(rf"^{name}=(\d+)$", DEPLOY_SCRIPT, re.MULTILINE)
    assert match, f"deploy.sh defines no {name}"
    return int(match[1])


def locked(path: Path) -> dict[NormalizedName, tuple[str, list[str]]]:
    """name → (version, sha256 hashes) of a pip-compile --generate-hashes file."""
    entries: dict[NormalizedName, tuple[str, list[str]]] = {}
    for block in re.split(r"\n(?=\S)", path.read_text()):
        first = block.split("\n", 1)[0]
        if not first or first.startswith("#"):
            continue
        requirement = Requirement(first.rstrip(" \\"))
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", first
        entries[canonicalize_name(requirement.name)] = (specifier.version, re.findall(r"--hash=sha256:(\w{64})", block))
    return entries


def pins(path: Path) -> dict[NormalizedName, str]:
    """name → version of a requirements file's `==` pins, following its `-r` includes."""
    found: dict[NormalizedName, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            found |= pins(path.parent / line[3:].strip())
        elif line:
            requirement = Requirement(line)
            (specifier,) = requirement.specifier
            found[canonicalize_name(requirement.name)] = specifier.version
    return found


def installed_closure(path: Path) -> set[NormalizedName]:
    """The distributions a requirements file pulls into this venv (markers evaluated here, extras followed)."""
    pending = [Requirement(line) for line in _requirement_lines(path)]
    seen: dict[NormalizedName, set[str]] = {}
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        new_extras = set(requirement.extras) - seen.get(name, set())
        if name in seen and not new_extras:
            continue
        seen.setdefault(name, set()).update(requirement.extras)
        for text in importlib.metadata.requires(name) or []:
            dependency = Requirement(text)
            extras = {""} | seen[name]
            if dependency.marker is None or any(dependency.marker.evaluate({"extra": extra}) for extra in extras):
                pending.append(dependency)
    return set(seen)


def _requirement_lines(path: Path) -> list[str]:
    lines = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            lines += _requirement_lines(path.parent / line[3:].strip())
        elif line:
            lines.append(line)
    return lines


def disk_usage(files: list[Path]) -> int:
    return sum(path.stat().st_blocks * 512 for path in files if path.is_file() and not path.is_symlink())


def distribution_disk_usage(name: str) -> int:
    files = importlib.metadata.distribution(name).files or []
    return disk_usage([Path(str(file.locate())) for file in files if file.suffix != ".pyc"])


# --- the lock files ---------------------------------------------------------------------------------------------


def test_the_deploy_lock_pins_the_whole_installed_closure_with_hashes() -> None:
    lock = locked(ROOT / "requirements-deploy.lock")
    assert set(lock) == installed_closure(ROOT / "requirements-deploy.txt")
    for name, (version, hashes) in lock.items():
        assert version == importlib.metadata.version(name), f"{name}: locked {version}, the tests ran with another"
        assert hashes, f"{name} has no hash: pip --require-hashes would refuse the file"
    for name, version in pins(ROOT / "requirements.txt").items():
        if name in lock:
            assert lock[name][0] == version, name


def test_the_lambda_lock_pins_exactly_requirements_lambda_with_hashes() -> None:
    """requirements-lambda.txt already lists the whole closure (installed for python3.12, not this venv);
    the lock adds the hashes of every file of those releases, the manylinux cp312 wheels among them."""
    lock = locked(ROOT / "requirements-lambda.lock")
    assert {name: version for name, (version, _) in lock.items()} == pins(ROOT / "requirements-lambda.txt")
    assert all(hashes for _, hashes in lock.values())
    for name, version in pins(ROOT / "requirements.txt").items():
        if name in lock:
            assert lock[name][0] == version, name


def test_deploy_installs_from_the_locks_with_hashes_and_without_caches() -> None:
    script = DEPLOY_SCRIPT.replace("\\\n", " ")
    installs = [" ".join(line.split()) for line in script.splitlines() if "-m pip install" in line]
    assert len(installs) == 2
    assert all("--require-hashes -r requirements-" in line and ".lock" in line for line in installs)
    assert all("--no-compile" in line for line in installs)
    assert "PIP_NO_CACHE_DIR=1" in script and 'npm_config_cache="${TMPDIR:-/tmp}/' in script
    assert "npm ci --omit=dev" in script


# --- the footprint ----------------------------------------------------------------------------------------------


def test_the_python_venv_fits_the_figure_deploy_sh_checks() -> None:
    lock = locked(ROOT / "requirements-deploy.lock")
    packages = sum(distribution_disk_usage(name) for name in lock) / MIB
    assert packages > 150  # aws-cdk-lib alone is ~200 MiB without bytecode: the computation found the files
    assert packages + VENV_TOOLS_MIB <= script_constant("VENV_MIB"), f"{packages:.0f} MiB of packages"


def test_the_lambda_dependencies_and_the_cdk_cli_fit_the_figures_deploy_sh_checks() -> None:
    lambda_deps, cdk_cli = ROOT / "build" / "lambda-deps", ROOT / "node_modules" / "aws-cdk"
    if not (lambda_deps / ".installed").exists() or not cdk_cli.is_dir():
        pytest.fail("build/lambda-deps or node_modules is missing: run make install")
    lambda_mib = disk_usage(list(lambda_deps.rglob("*"))) / MIB
    cli_mib = disk_usage(list(cdk_cli.rglob("*"))) / MIB
    assert 50 < lambda_mib <= script_constant("LAMBDA_DEPS_MIB")
    assert 10 < cli_mib <= script_constant("NODE_MODULES_MIB")


def test_a_first_deploy_leaves_room_in_cloudshells_home() -> None:
    """The uploaded bundle, its extracted files and every part deploy.sh installs, with cdk.out."""
    data = bundle.build_bundle(CONFIG)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        extracted = sum(member.size for member in tar.getmembers())
    installs = ("VENV_MIB", "LAMBDA_DEPS_MIB", "NODE_MODULES_MIB", "CDK_OUT_MIB")
    total = (len(data) + extracted) / MIB + sum(script_constant(name) for name in installs)
    assert total <= HOME_MIB - ROOM_TO_SPARE_MIB, f"{total:.0f} MiB"
