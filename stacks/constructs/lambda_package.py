"""Lambda assets built without Docker: CDK local bundling copies a handler, the eksight package and the
third-party dependencies that `make install` vendored into build/lambda-deps/ (pinned wheels for
python3.12 on x86_64, see requirements-lambda.txt).

The asset hash is computed here from exactly what goes into the asset (handler files, eksight files, the
vendored wheels' RECORD files, extra files, whether bytecode is included), so `cdk synth` is deterministic,
offline, and an unchanged asset is not bundled or uploaded again.

Bytecode: Lambda's code directory is read-only, so a module without a matching ``__pycache__/*.cpython-312.pyc``
is compiled from source at every cold start (about half a second of CPU for the detector's ~1,000 modules). The
bundle therefore compiles every module with a python3.12 interpreter (``EKSIGHT_LAMBDA_PYTHON``, else
``python3.12`` on PATH), as unchecked-hash pycs (valid whatever the zip does to file times; the import system
points their code at the source file where it finds it, for tracebacks). Compiled files are cached by content under
build/lambda-bytecode/, so a synth compiles only what changed. Without such an interpreter the asset ships
sources only, with a warning.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.constructs.nag import BASIC_EXECUTION_FINDING, acknowledge

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LAMBDAS_ROOT = PROJECT_ROOT / "lambdas"
EKSIGHT_PACKAGE = PROJECT_ROOT / "eksight"
DEPS_DIR = PROJECT_ROOT / "build" / "lambda-deps"
DEPS_STAMP = ".installed"  # written by `make install` once pip succeeded
BYTECODE_CACHE = PROJECT_ROOT / "build" / "lambda-bytecode"  # pycs by content, shared by every bundle

RUNTIME = lambda_.Runtime.PYTHON_3_12
RUNTIME_CACHE_TAG = "cpython-312"  # the bytecode RUNTIME loads (sys.implementation.cache_tag)
ARCHITECTURE = lambda_.Architecture.X86_64
METRICS_NAMESPACE = "eksight"  # Powertools metrics of every eksight function (dimension `service`)
LOG_RETENTION = logs.RetentionDays.ONE_MONTH

# What a function runs: the pure core and the AWS adapters. Tooling (eksight/tools: CLI, wizard, emulator,
# simulator) and the deployment config's models (eksight/config) never ship.
EKSIGHT_SHIPPED = frozenset({"__init__.py", "core", "adapters"})
ALWAYS_EXCLUDED = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"})
# Not needed at run time in Lambda: console scripts and numpy's own test suite.
DEPS_EXCLUDED = frozenset({"bin", DEPS_STAMP})
DEPS_EXCLUDED_SUBTREES = ("numpy/",)  # within these, directories named `tests` are left out


class LambdaPackageError(RuntimeError):
    """The asset cannot be built; the message says what to run or create."""


class LambdaPackage:
    """The files of one function's asset. `code()` returns the `lambda_.Code` to give `lambda_.Function`."""

    def __init__(
        self,
        name: str,
        *,
        extra_files: Mapping[str, str] | None = None,
        without: Iterable[str] = (),
        vendored_dependencies: bool = True,
        handlers_root: Path = LAMBDAS_ROOT,
        deps_dir: Path = DEPS_DIR,
    ) -> None:
        """`without`: vendored distributions this function does not import (e.g. ``numpy``), left out by
        their wheel's RECORD so the asset stays small. `vendored_dependencies=False`: none at all, for a
        function that needs only the runtime's own boto3/botocore (and then `make install` is not needed)."""
        self.name = name
        self.handler_dir = handlers_root / name
        self.deps_dir = deps_dir
        self.vendored_dependencies = vendored_dependencies
        self.without = tuple(without)
        if self.without and not vendored_dependencies:
            raise ValueError("`without` leaves out vendored dependencies, but this package ships none")
        self.extra_files = dict(extra_files or {})
        for file_name in self.extra_files:
            if "/" in file_name or file_name.startswith("."):
                raise ValueError(f"extra file {file_name!r} must be a plain file name in the asset root")

    def code(self) -> lambda_.Code:
        self._check()
        return lambda_.Code.from_asset(
            str(self.handler_dir),
            asset_hash_type=cdk.AssetHashType.CUSTOM,
            asset_hash=self.fingerprint(),
            bundling=cdk.BundlingOptions(
                image=cdk.DockerImage.from_registry("local-bundling-only"),  # never pulled: local bundling runs
                local=_LocalBundler(self),
                output_type=cdk.BundlingOutput.NOT_ARCHIVED,
            ),
        )

    def _check(self) -> None:
        if not (self.handler_dir / "handler.py").is_file():
            raise LambdaPackageError(
                f"{self.handler_dir / 'handler.py'} is missing: the {self.name} function's "
                "asset is built from that directory (lambdas/<name>/handler.py)"
            )
        if self.vendored_dependencies and not (self.deps_dir / DEPS_STAMP).is_file():
            raise LambdaPackageError(
                f"the Lambda dependencies are not built ({self.deps_dir} has no {DEPS_STAMP}): run make install "
                "(it vendors requirements-lambda.txt for python3.12/x86_64; no Docker needed)"
            )

    # ---- contents ---------------------------------------------------------------------------------------
    def files(self) -> Iterator[tuple[str, Path]]:
        """(path in the asset, source file), in a stable order; later entries never overwrite earlier ones."""
        yield from _walk(self.handler_dir, "", lambda rel: False)
        yield from _walk(EKSIGHT_PACKAGE, "eksight/", lambda rel: rel.split("/", 1)[0] not in EKSIGHT_SHIPPED)
        if self.vendored_dependencies:
            left_out = self._left_out()
            yield from _walk(self.deps_dir, "", lambda rel: _excluded_dependency(rel) or rel in left_out)

    def _left_out(self) -> set[str]:
        """Files of the distributions in `without` (from their wheels' RECORD), plus the top-level directories
        that only those distributions use (so they are not even walked)."""
        records = {
            info: {line.split(",", 1)[0] for line in (info / "RECORD").read_text().splitlines() if line}
            for info in self.deps_dir.glob("*.dist-info")
        }
        left_out: set[str] = set()
        for distribution in self.without:
            normalized = distribution.lower().replace("-", "_")
            infos = [info for info in records if info.name.lower().split("-")[0] == normalized]
            if len(infos) != 1:
                raise LambdaPackageError(f"{distribution} is not among the vendored dependencies in {self.deps_dir}")
            left_out |= records.pop(infos[0])
        kept_tops = {path.split("/", 1)[0] for files in records.values() for path in files}
        return left_out | {path.split("/", 1)[0] for path in left_out} - kept_tops

    def fingerprint(self) -> str:
        digest = hashlib.sha256(f"bytecode:{RUNTIME_CACHE_TAG if runtime_python() else 'none'}\0".encode())
        for rel, source in self.files():
            digest.update(rel.encode() + b"\0")
            if source.is_relative_to(self.deps_dir) and not rel.endswith(".dist-info/RECORD"):
                # The wheels' RECORD files hold every installed file's hash: hash those, not 100 MB of files.
                continue
            digest.update(hashlib.sha256(source.read_bytes()).digest())
        for file_name, content in sorted(self.extra_files.items()):
            digest.update(f"extra:{file_name}\0{content}\0".encode())
        return digest.hexdigest()

    def bundle(self, output_dir: str | Path) -> None:
        out = Path(output_dir)
        seen: set[str] = set()
        for rel, source in self.files():
            if rel in seen:
                raise LambdaPackageError(f"{rel} would come from two places ({source}); rename one of them")
            seen.add(rel)
            target = out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_relative_to(self.deps_dir):
                _link_or_copy(source, target)
            else:  # sources may be edited in place later: the staged asset must not change with them
                shutil.copy2(source, target)
        for file_name, content in self.extra_files.items():
            if file_name in seen:
                raise LambdaPackageError(f"extra file {file_name} collides with a packaged file")
            (out / file_name).write_text(content, encoding="utf-8")
        self._add_bytecode(out)

    def _add_bytecode(self, out: Path) -> None:
        """The runtime's pycs for every module in `out`, from the cache or compiled (see the module docstring)."""
        python = runtime_python()
        if python is None:
            warnings.warn(
                f"the {self.name} asset ships no bytecode, so every cold start compiles its modules: install "
                "python3.12 or point EKSIGHT_LAMBDA_PYTHON at one",
                stacklevel=2,
            )
            return
        to_compile: list[tuple[Path, Path, Path]] = []
        for source in sorted(out.rglob("*.py")):
            rel = source.relative_to(out).as_posix()
            key = hashlib.sha256(rel.encode() + b"\0" + source.read_bytes()).hexdigest()
            cached = BYTECODE_CACHE / RUNTIME_CACHE_TAG / key[:2] / f"{key}.pyc"
            target = source.parent / "__pycache__" / f"{source.stem}.{RUNTIME_CACHE_TAG}.pyc"
            target.parent.mkdir(exist_ok=True)
            if cached.is_file():
                _link_or_copy(cached, target)
            else:
                to_compile.append((source, target, cached))
        if to_compile:
            _compile(python, out, [(source, target) for source, target, _ in to_compile])
            for _, target, cached in to_compile:
                cached.parent.mkdir(parents=True, exist_ok=True)
                staged = cached.with_name(f".{cached.name}.{os.getpid()}")
                shutil.copy2(target, staged)
                staged.replace(cached)  # whole or not at all, whatever else bundles at the same time


@jsii.implements(cdk.ILocalBundling)
class _LocalBundler:
    def __init__(self, package: LambdaPackage) -> None:
        self._package = package

    def try_bundle(self, output_dir: str, *_: Any, **__: Any) -> bool:
        self._package.bundle(output_dir)
        return True


def _walk(root: Path, prefix: str, excluded: Any) -> Iterator[tuple[str, Path]]:
    for directory, subdirs, files in os.walk(root):
        rel_dir = Path(directory).relative_to(root).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        subdirs[:] = sorted(d for d in subdirs if d not in ALWAYS_EXCLUDED and not excluded(rel_dir + d))
        for file_name in sorted(files):
            rel = rel_dir + file_name
            if not file_name.endswith((".pyc", ".pyo")) and not excluded(rel):
                yield prefix + rel, Path(directory) / file_name


def _excluded_dependency(rel: str) -> bool:
    parts = rel.split("/")
    return parts[0] in DEPS_EXCLUDED or (rel.startswith(DEPS_EXCLUDED_SUBTREES) and "tests" in parts)


def _link_or_copy(source: Path, target: Path) -> None:
    """Hard links make bundling the ~100 MB of vendored wheels ~instant (they are only read, then zipped, and
    `make install` replaces the directory rather than editing files); copy across file systems."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


@cache
def runtime_python() -> str | None:
    """An interpreter of the Lambda runtime's Python version (``EKSIGHT_LAMBDA_PYTHON``, else ``python3.12``),
    or None. Checked by running it: a pyenv shim may exist without the version it names."""
    candidates = (
        os.environ.get("EKSIGHT_LAMBDA_PYTHON"),
        shutil.which("python3.12"),
        *_pyenv_pythons(),
        sys.executable,
    )
    for candidate in candidates:
        if not candidate:
            continue
        try:
            tag = subprocess.run(
                [candidate, "-c", "import sys; print(sys.implementation.cache_tag)"],
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout.strip()
        except OSError:
            continue
        if tag == RUNTIME_CACHE_TAG:
            return candidate
    return None


def _pyenv_pythons() -> list[str]:
    """python3.12 interpreters pyenv has installed but not selected (its shim then refuses to run them)."""
    if not shutil.which("pyenv"):
        return []
    try:
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, timeout=30).stdout.strip()
    except OSError:
        return []
    return [str(path) for path in sorted(Path(root).glob("versions/3.12*/bin/python3.12"))] if root else []


COMPILE = """
import json, py_compile, sys
for source, target, shown in json.load(sys.stdin):
    py_compile.compile(source, target, shown, doraise=True, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
"""


def _compile(python: str, out: Path, files: list[tuple[Path, Path]]) -> None:
    """Compiles each (source, pyc) with `python`; the pyc names its source by its path in the asset, so that the
    same source always gives the same pyc."""
    jobs = [(str(source), str(target), source.relative_to(out).as_posix()) for source, target in files]
    subprocess.run([python, "-c", COMPILE], input=json.dumps(jobs), text=True, check=True, capture_output=True)


def asset_size(directory: str | Path) -> int:
    """Unzipped size in bytes (Lambda's limit for function + layers is 250 MB)."""
    return sum(path.stat().st_size for path in Path(directory).rglob("*") if path.is_file())


class EksightFunction(Construct):
    """eksight's house style for a Python function: python3.12 on x86_64, an asset from LambdaPackage, X-Ray
    tracing, its own log group (retention, retained on stack delete, KMS-encrypted with `log_key`), Powertools settings, and the cdk-nag acknowledgements that
    every such function shares (and nothing else: permissions are added by the construct that uses it)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        package: LambdaPackage,
        description: str,
        service: str,
        memory_mb: int,
        timeout: Duration,
        environment: Mapping[str, str],
        reserved_concurrency: int | None = None,
        log_retention: logs.RetentionDays = LOG_RETENTION,
        dead_letter_queue: sqs.IQueue | None = None,
        retry_attempts: int | None = None,
        log_key: kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        # Retained: a function's logs are evidence of what it did, and outlive the stack (until their retention).
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, encryption_key=log_key, removal_policy=RemovalPolicy.RETAIN
        )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=package.code(),
            handler="handler.handler",
            description=description,
            memory_size=memory_mb,
            timeout=timeout,
            reserved_concurrent_executions=reserved_concurrency,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            dead_letter_queue=dead_letter_queue,
            retry_attempts=retry_attempts,
            environment={
                "POWERTOOLS_SERVICE_NAME": service,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                **environment,
            },
        )
        acknowledge(
            self.function,
            BASIC_EXECUTION_FINDING,
            f"The {service} function uses AWSLambdaBasicExecutionRole only to write its own CloudWatch "
            "logs (its log group is created with a retention by this stack).",
        )
        acknowledge(
            self.function,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords do not support "
            "resource-level permissions, so CDK's tracing statement can only name '*'.",
        )
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            "eksight's Lambda functions deliberately target python3.12, the runtime its vendored "
            "dependencies (requirements-lambda.txt) are built and tested for; moving is a tested upgrade.",
        )
