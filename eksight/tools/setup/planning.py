"""After the config is written: synthesize it (offline), summarise the plan, diff against the account when
credentials work, deploy on request, and say what to run next.

Synthesis is stacks.app_builder.synthesize (the app `cdk synth` runs, with cdk.json's context and cdk-nag) in a
child Python process, so the CDK's node runtime never lives in the caller (the wizard's server, the generator);
it writes into a directory the caller chooses, so a concurrent `cdk.out` is never touched.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eksight.tools import PROJECT_ROOT
from eksight.tools.plan import StackPlan, deploy_command, load_plans, render

CDK = ["npx", "--no-install", "cdk"]
CDK_FLAGS = ["--no-notices", "--no-version-reporting"]
SYNTH_TIMEOUT = 600
DIFF_TIMEOUT = 300
# The child process's whole program: the one synthesize function, into the directory it is given.
_SYNTH_PROGRAM = "import sys; from stacks.app_builder import synthesize; synthesize(sys.argv[1], sys.argv[2])"


def project_root() -> Path | None:
    """The eksight checkout holding app.py and cdk.json (where cdk and make run), if this is one."""
    root = PROJECT_ROOT
    return root if (root / "cdk.json").is_file() and (root / "app.py").is_file() else None


SILENCE_NODE_EOL = "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"  # jsii: majors whose end-of-life banner to skip


@functools.cache
def node_major() -> str | None:
    try:
        version = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return version.stdout.strip().lstrip("v").split(".")[0] or None


def cdk_env() -> dict[str, str]:
    env = dict(os.environ)
    silenced = [v.strip() for v in env.get(SILENCE_NODE_EOL, "").split(",") if v.strip()]
    major = node_major()
    if major and major not in silenced:
        env[SILENCE_NODE_EOL] = ",".join([*silenced, major])
    root = project_root()
    if root:  # cdk.json runs .venv/bin/python app.py; make synth puts the venv first on PATH too
        env["PATH"] = f"{root / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


class PlanError(Exception):
    """Synthesis or diff failed; the message holds the tool's last lines."""


@dataclass
class Synthesis:
    assembly: Path
    plans: list[StackPlan]
    deploy: str  # the complete command that deploys these stacks (from the project root)
    seconds: float = 0.0

    def summary(self) -> str:
        return render(self.plans, self.deploy)

    def to_json(self) -> list[dict[str, Any]]:
        return [
            {
                "stack": p.name,
                "environment": p.environment,
                "clusters": p.clusters,
                "lines": [{"label": label, "text": text} for label, text in p.lines],
                "resources": sum(p.resource_counts.values()),
                "resource_types": dict(sorted(p.resource_counts.items())),
            }
            for p in self.plans
        ]


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def synthesize(config_path: Path, outdir: Path) -> Synthesis:
    """Synthesizes this config into outdir (offline) and summarises the templates with eksight.tools.plan.
    Raises PlanError with the synthesis's last lines when it fails."""
    root = project_root()
    if root is None:
        raise PlanError(
            f"synthesis needs the eksight checkout (app.py, cdk.json); run `make synth CONFIG={config_path}` there"
        )
    started = time.monotonic()
    command = [sys.executable, "-c", _SYNTH_PROGRAM, str(config_path.resolve()), str(outdir)]
    try:
        done = subprocess.run(
            command, cwd=root, env=cdk_env(), capture_output=True, text=True, timeout=SYNTH_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise PlanError(f"synthesis took longer than {SYNTH_TIMEOUT} s") from None
    except OSError as error:
        raise PlanError(f"could not run {sys.executable}: {error}") from None
    if done.returncode != 0:
        raise PlanError(f"synthesis failed (exit {done.returncode}):\n{_tail(done.stderr or done.stdout)}")
    deploy = deploy_command(display_path(config_path, root))
    return Synthesis(outdir, load_plans(outdir), deploy, time.monotonic() - started)


# ---- cdk diff --------------------------------------------------------------------------------------------


@dataclass
class StackDiff:
    stack: str
    add: int = 0
    change: int = 0
    remove: int = 0
    replace: int = 0
    lines: list[str] = field(default_factory=list)

    def text(self) -> str:
        if not (self.add or self.change or self.remove):
            return f"{self.stack}: no changes"
        replaced = f" ({self.replace} replaced)" if self.replace else ""
        return f"{self.stack}: {self.add} to add, {self.change} to change{replaced}, {self.remove} to remove"


_STACK = re.compile(r"^Stack (\S+)")
_SECTION = re.compile(r"^[A-Z][A-Za-z ]+$")  # "Resources", "Outputs", "IAM Statement Changes", …
_RESOURCE = re.compile(r"^\[(?P<op>[+~-])\] (?P<type>\S+) (?P<rest>.*)$")


def summarize_diff(text: str) -> dict[str, StackDiff]:
    """Resources to add/change/remove per stack, read from `cdk diff` output (its Resources sections); a
    changed resource counts as replaced when its line or its property lines say so."""
    stacks: dict[str, StackDiff] = {}
    current: StackDiff | None = None
    section = ""
    replaced: dict[int, bool] = {}  # each [~] resource (by line index) → replaced?
    changing: int | None = None  # the [~] resource whose property lines follow
    for raw in text.splitlines():
        line = re.sub(r"\x1b\[[0-9;]*m", "", raw).rstrip()
        if match := _STACK.match(line):
            current = stacks.setdefault(match[1], StackDiff(match[1]))
            section, replaced, changing = "", {}, None
            continue
        if _SECTION.match(line):
            section = line
            continue
        if current is None or section != "Resources":
            continue
        if match := _RESOURCE.match(line):
            op, changing = match["op"], None
            if op == "+":
                current.add += 1
            elif op == "-":
                current.remove += 1
            else:
                current.change += 1
                changing = len(current.lines)
                replaced[changing] = "replace" in match["rest"].lower()
            current.lines.append(line)
        elif line.startswith(" ") and current.lines:  # property lines of the resource above
            if changing is not None and "replace" in line.lower():
                replaced[changing] = True
            current.lines.append(line)
        current.replace = sum(replaced.values())
    return stacks


def diff(assembly: Path) -> tuple[dict[str, StackDiff], str]:
    """`cdk diff` of the synthesized assembly against the account (credentials needed)."""
    root = project_root() or Path.cwd()
    command = [*CDK, "diff", *CDK_FLAGS, "--app", str(assembly)]
    try:
        done = subprocess.run(
            command, cwd=root, env=cdk_env(), capture_output=True, text=True, timeout=DIFF_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise PlanError(f"could not run cdk diff: {error}") from None
    output = (done.stdout or "") + (done.stderr or "")  # cdk prints the diff on stderr
    if done.returncode != 0:
        raise PlanError(f"cdk diff failed (exit {done.returncode}):\n{_tail(output)}")
    return summarize_diff(output), output


def deploy(config_path: Path) -> int:
    """`npx cdk deploy --all` in the foreground (cdk asks before IAM changes)."""
    root = project_root()
    if root is None:
        raise PlanError("deploy needs the eksight checkout (app.py, cdk.json)")
    return subprocess.call([*CDK, "deploy", "--all", "-c", f"config={config_path.resolve()}"], cwd=root, env=cdk_env())


# ---- what to run next --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    command: str
    why: str


def display_path(path: Path, base: Path | None) -> str:
    """The config path as the commands (run from the project root) should name it."""
    path = path.resolve()
    if base is not None:
        try:
            return str(path.relative_to(base.resolve()))
        except ValueError:
            pass
    return str(path)


def next_steps(
    config_path: Path,
    regions: list[str],
    *,
    account: str | None,
    cloudshell: bool,
    root: Path | None,
    cwd: Path | None = None,
) -> list[Step]:
    """The commands to synthesize, bootstrap, deploy and verify, for this config and this machine."""
    cwd = cwd or Path.cwd()
    shown = shlex.quote(display_path(config_path, root))
    steps: list[Step] = []
    if root is not None and cwd.resolve() != root.resolve():
        steps.append(Step(f"cd {shlex.quote(str(root))}", "make and cdk run from the eksight checkout"))
    if cloudshell:
        steps.append(
            Step(
                "python3 --version",
                "CloudShell has node, npm and your console credentials already; "
                "eksight needs Python 3.11+ (if older: sudo dnf install -y python3.11, then add "
                "PYTHON=python3.11 to the first make)",
            )
        )
    steps.append(Step(f"make synth CONFIG={shown}", "synthesize offline and summarise what will be deployed"))
    if account:
        target = account
    elif cloudshell:
        target = "$(aws sts get-caller-identity --query Account --output text)"
    else:
        target = "ACCOUNT"
    for region in regions:
        steps.append(
            Step(
                f"npx cdk bootstrap aws://{target}/{region}",
                "once per account and region (the stacks ship small Lambda assets)"
                + ("" if account or cloudshell else "; ACCOUNT is your 12-digit account id"),
            )
        )
    steps.append(Step(f"npx cdk deploy --all -c config={shown}", "deploy every stack (asks before IAM changes)"))
    steps.append(
        Step(
            f"eksight check --config {shown}",
            "after deploying: audit logging, log groups, subscription slots, delivery",
        )
    )
    return steps


def render_steps(steps: list[Step], *, cloudshell: bool) -> str:
    lines = [
        "Next steps"
        + (
            " (AWS CloudShell: credentials, node and npm are already set up; keep the "
            "checkout and config in $HOME, the only directory CloudShell keeps)"
            if cloudshell
            else ""
        )
        + ":"
    ]
    width = max(len(step.command) for step in steps)
    lines += [f"  {step.command:<{width}}  # {step.why}" for step in steps]
    return "\n".join(lines)
