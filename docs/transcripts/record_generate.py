"""Record one interactive `eksight generate` session (two regions, a few advanced options, the plan) through a
pseudo-terminal, and time it: generate → valid config → synthesized plan.

    .venv/bin/python docs/transcripts/record_generate.py

Writes docs/transcripts/generate.txt (the screen as a person saw it), generate.log (pexpect's raw logfile;
`cat` it in a terminal to replay the redraws) and prints the timings. Offline: no AWS credentials, so the
session shows the no-credentials path (cluster names typed, no cdk diff). Paths of this machine (the checkout, the
temporary folder) are written as `~/eksight` and `~/eksight-demo`.
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHECKOUT = HERE.parents[1]
sys.path.insert(0, str(CHECKOUT))

from tests.setup.pty_session import UP, Terminal, offline_env  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="eksight-demo-") as folder:
        work = Path(folder)
        started = time.monotonic()
        term = Terminal(["--nocache"], offline_env(work), cwd=work, timeout=180, logfile=HERE / "generate.log")
        term.confirm("more than one region?", yes=True)
        term.answer("AWS region of the clusters:", "us-east-1")
        term.answer("Cluster names in us-east-1 (comma-separated):", "prod-api, prod-batch")
        term.confirm("Configure another region?", yes=True)
        term.answer("Next region:", "eu-west-1")
        term.answer("Cluster names in eu-west-1 (comma-separated):", "eu-prod")
        term.confirm("Configure another region?", yes=False)
        term.confirm("Configure advanced options?", yes=True)
        term.menu("1")
        term.choose("Archive bucket:")
        term.answer("Existing bucket ARN for us-east-1:", "arn:aws:s3:::acme-security-eks-audit")
        term.answer("Existing bucket ARN for eu-west-1:", "")
        term.menu("6")
        term.confirm("Turn on the EKS 'audit' log type", yes=True)
        term.menu("9")
        term.choose("Send readable alerts through SNS:")
        term.answer("Email addresses (comma-separated):", "eks-security@example.com")
        term.choose("Alert on findings of at least:", UP)
        term.menu("a")
        term.answer("Tag as key=value:", "team=platform-security")
        term.answer("Tag as key=value:", "")
        term.choose("Done when finished")
        term.expect("it is valid.")
        to_config = time.monotonic() - started
        term.confirm("Synthesize and show the plan now", yes=True)
        term.expect("stack(s). Deploy one with")
        to_plan = time.monotonic() - started
        status = term.finish()
        total = time.monotonic() - started
        (HERE / "generate.txt").write_text(
            f"$ eksight generate --nocache        # in an empty folder, no AWS credentials\n{term.screen.strip()}\n"
            f"$ echo $?\n{status}\n",
            encoding="utf-8",
        )
        written = (work / "eksight.config.json").read_text()
    placeholders = {str(work.resolve()): "~/eksight-demo", str(work): "~/eksight-demo", str(CHECKOUT): "~/eksight"}
    for transcript in (HERE / "generate.txt", HERE / "generate.log"):
        transcript.write_bytes(without_machine_paths(transcript.read_bytes().decode(), placeholders).encode())
    print(
        f"exit {status}; valid config written after {to_config:.1f} s, plan shown after {to_plan:.1f} s "
        f"(synthesis {to_plan - to_config:.1f} s), done after {total:.1f} s"
    )
    print(written)


def without_machine_paths(text: str, placeholders: dict[str, str]) -> str:
    """Each path replaced by its (shorter) placeholder; the spaces after it grow by the difference, so the
    comments the CLI aligns in a column stay aligned."""
    for path, placeholder in sorted(placeholders.items(), key=lambda item: -len(item[0])):
        text = re.sub(re.escape(path) + r"(\S*)( {2,})?", partial(_placed, placeholder, len(path)), text)
    return text


def _placed(placeholder: str, length: int, match: re.Match[str]) -> str:
    spaces = " " * (len(match[2]) + length - len(placeholder)) if match[2] else ""
    return f"{placeholder}{match[1]}{spaces}"


if __name__ == "__main__":
    main()
