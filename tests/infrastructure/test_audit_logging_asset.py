"""The audit-logging custom resource's asset: its handler, eksight's core and adapters, and no vendored
third-party package (the Lambda runtime's boto3/botocore is all it needs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stacks.constructs.lambda_package import LambdaPackage, asset_size

# Vendored for the other functions; the audit-logging function must import none of them.
VENDORED_ELSEWHERE = ("numpy", "msgspec", "orjson", "pydantic", "aws_lambda_powertools", "aws_xray_sdk")


@pytest.fixture(scope="module")
def asset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("audit-logging-asset")
    LambdaPackage("audit_logging", vendored_dependencies=False).bundle(out)
    return out


def test_asset_holds_the_handler_and_eksight_core_and_adapters_only(asset: Path) -> None:
    files = {p.relative_to(asset).as_posix() for p in asset.rglob("*") if p.is_file()}
    names = {name for name in files if "__pycache__" not in name}  # bytecode: see test_detection_stack
    assert {"handler.py", "eksight/__init__.py", "eksight/core/eks.py", "eksight/adapters/eks_logging.py"} <= names
    tops = {name.split("/", 1)[0] for name in names}
    assert tops == {"handler.py", "__init__.py", "eksight"}  # no boto3/, numpy/, *.dist-info ...
    assert not [n for n in files if n.startswith(("eksight/tools/", "eksight/config/"))]
    size_kb = asset_size(asset) / 1e3
    print(f"\naudit-logging asset, unzipped: {size_kb:.0f} kB")
    assert size_kb < 2_000


def test_the_handler_imports_from_the_asset_without_vendored_packages(asset: Path) -> None:
    """As in Lambda: the asset first on sys.path, boto3 from the runtime (here the venv), nothing else of ours."""
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(asset)!r})\n"
        "import handler\n"
        "print(json.dumps({'files': [handler.__file__, sys.modules['eksight.adapters.eks_logging'].__file__],"
        " 'modules': sorted(sys.modules)}))\n"
    )
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    env.pop("PYTHONPATH", None)
    run = subprocess.run(
        [sys.executable, "-I", "-c", code], env=env, capture_output=True, text=True, timeout=120, cwd=asset
    )
    assert run.returncode == 0, run.stderr[-2000:]
    loaded = json.loads(run.stdout)
    assert all(Path(f).is_relative_to(asset) for f in loaded["files"])
    assert not [m for m in loaded["modules"] if m.split(".")[0] in VENDORED_ELSEWHERE]


def test_a_package_without_vendored_dependencies_needs_no_make_install(tmp_path: Path) -> None:
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "handler.py").write_text("")
    package = LambdaPackage("fn", vendored_dependencies=False, handlers_root=tmp_path, deps_dir=tmp_path / "none")
    package.code()  # no LambdaPackageError about build/lambda-deps
    with pytest.raises(ValueError, match="ships none"):
        LambdaPackage("fn", vendored_dependencies=False, without=["numpy"], handlers_root=tmp_path)
