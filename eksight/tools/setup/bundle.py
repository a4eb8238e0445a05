"""The CloudShell bundle: the eksight app, a validated config and `deploy.sh`, as one `.tar.gz`.

Upload it with CloudShell's "Upload file" (it lands in $HOME) and paste `CLOUDSHELL_COMMAND`. The bundle
holds exactly what `cdk deploy` needs: no virtualenv, node_modules, cdk.out, tests, caches or VCS data.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from eksight.config import DeploymentConfig, parse
from eksight.tools import PROJECT_ROOT

PROJECT_ROOT = PROJECT_ROOT
DEPLOY_SCRIPT = Path(__file__).with_name("deploy.sh")
BUNDLE_NAME = "eksight-bundle.tar.gz"
CONFIG_NAME = "eksight.config.json"
SCHEMA_REFERENCE = "./schema/eksight.config.schema.json"
CLOUDSHELL_COMMAND = "mkdir -p ~/eksight && tar -xzf ~/eksight-bundle.tar.gz -C ~/eksight && bash ~/eksight/deploy.sh"

APP_FILES = ("app.py", "cdk.json", "package.json", "package-lock.json", "Makefile")
APP_FILE_GLOBS = ("requirements*.txt", "requirements*.lock")  # deploy.sh installs the .lock files
APP_DIRS = ("eksight", "stacks", "lambdas", "schema")
# Never shipped, wherever they appear (names of directories or files); hidden files are never shipped either.
EXCLUDED_NAMES = frozenset({"__pycache__", "tests", "node_modules", "cdk.out", "build", "dist"})
EXCLUDED_SUFFIXES = (".pyc", ".pyo", ".egg-info", "~", ".swp", ".orig", ".rej")


class BundleError(RuntimeError):
    """The bundle cannot be built from this installation; the message says why."""


def config_text(config: dict[str, Any]) -> str:
    """The config file as written into the bundle (and offered for download): 2-space JSON, `$schema` first."""
    ordered = {"$schema": SCHEMA_REFERENCE, **{k: v for k, v in config.items() if k != "$schema"}}
    return json.dumps(ordered, indent=2, ensure_ascii=False) + "\n"


def app_files(root: Path = PROJECT_ROOT) -> Iterator[tuple[str, Path]]:
    """(path in the bundle, file) of the app, sorted; symlinks are not followed."""
    missing = [name for name in (*APP_FILES, *APP_DIRS) if not (root / name).exists()]
    if missing:
        raise BundleError(
            f"{root} is not an eksight source tree (missing {', '.join(missing)}); run eksight ui "
            "from a clone of the repository"
        )
    files = [root / name for name in APP_FILES]
    for pattern in APP_FILE_GLOBS:
        files += sorted(root.glob(pattern))
    for directory in APP_DIRS:
        files += [path for path in sorted((root / directory).rglob("*")) if path.is_file()]
    for path in files:
        rel = path.relative_to(root)
        if path.is_symlink() or not _shipped(rel):
            continue
        yield rel.as_posix(), path


def _shipped(rel: Path) -> bool:
    return not any(
        part in EXCLUDED_NAMES or part.startswith(".") or part.endswith(EXCLUDED_SUFFIXES) for part in rel.parts
    )


def validate(config: dict[str, Any]) -> DeploymentConfig:
    """eksight.config.parse, the one validator (raises ConfigError with (field path, message) problems)."""
    return parse(config, source=CONFIG_NAME)


def build_bundle(config: dict[str, Any], root: Path = PROJECT_ROOT) -> bytes:
    """The .tar.gz bytes. Raises ConfigError when the config is not deployable, BundleError when the app is
    incomplete. Members: the app files, `eksight.config.json` and `deploy.sh` (mode 755), all at the top."""
    validate(config)
    if not DEPLOY_SCRIPT.is_file():
        raise BundleError(f"{DEPLOY_SCRIPT} is missing")
    now = int(time.time())
    buffer = io.BytesIO()
    # gzip via GzipFile so the header's own mtime is fixed too; the members carry the build time.
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=now) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for rel, path in app_files(root):
            _add(tar, rel, path.read_bytes(), 0o755 if path.stat().st_mode & 0o111 else 0o644, now)
        _add(tar, CONFIG_NAME, config_text(config).encode(), 0o644, now)
        _add(tar, "deploy.sh", DEPLOY_SCRIPT.read_bytes(), 0o755, now)
    return buffer.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int, mtime: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))
