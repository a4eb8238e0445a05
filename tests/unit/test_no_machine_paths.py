"""No committed file names a path of one particular machine (a checkout, a home directory, a temporary folder of
some run): docs and transcripts must read the same on every computer, and the code must not depend on one."""

from __future__ import annotations

import re
import subprocess
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# An absolute path into a directory that differs from machine to machine (the bare directory, as in "/home", is the
# same everywhere: host paths a rule watches, say).
MACHINE_PATH = re.compile(
    r"(?<![\w.~/-])(?:/(?:work|root|home|Users|tmp|var/folders|private/var|opt|mnt|srv|builds|workspace)"
    r"|[A-Za-z]:\\Users)[/\\][^\s'\"`)\]>,;]+"
)
# (files, allowed path, why): each a path every machine has or an example that is not anyone's.
ALLOWED = [
    ("*", r"/tmp/eksight(/deploy\.sh)?", "CloudShell advice: extract the bundle under /tmp (deploy.sh, docs, tests)"),
    ("docs/simulator.md", r"/tmp/\w+", "example output folders of eksight simulate"),
    ("bench/hunt.py", r"/tmp/eksight-bench-hunt", "the benchmark's default scratch folder"),
    ("docs/setup.md", r"/home/me/eksight\.config\.json", "an example of the JSON output (a placeholder user)"),
    ("tests/unit/rules/*", r".*", "command lines and file paths inside attacked containers are the test data"),
    ("tests/unit/test_no_machine_paths.py", r".*", "this test's own patterns"),
]


def committed_text_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [name for name in listed.decode().split("\0") if name and (ROOT / name).is_file()]


def machine_paths(name: str, text: str) -> list[str]:
    found = []
    for match in MACHINE_PATH.finditer(text):
        path = match[0].rstrip(".:")
        if not any(fnmatch(name, files) and re.fullmatch(allowed, path) for files, allowed, _ in ALLOWED):
            line = text.count("\n", 0, match.start()) + 1
            found.append(f"{name}:{line}: {path}")
    return found


def test_no_committed_file_contains_a_path_of_a_particular_machine() -> None:
    found = []
    files = committed_text_files()
    assert len(files) > 100  # the listing worked
    for name in files:
        data = (ROOT / name).read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary
        found += machine_paths(name, data.decode("utf-8", errors="replace"))
    assert not found, "\n".join(found)


def test_the_scan_finds_the_kinds_of_paths_it_is_meant_to_find() -> None:
    text = "cd /srv/ci/checkout\nsee /home/alice/x.json, C:\\Users\\bob\\x and /tmp/eksight-demo-3dcxy47k/eksight.config.json"
    assert machine_paths("docs/x.md", text) == [
        "docs/x.md:1: /srv/ci/checkout",
        "docs/x.md:2: /home/alice/x.json",
        "docs/x.md:2: C:\\Users\\bob\\x",
        "docs/x.md:2: /tmp/eksight-demo-3dcxy47k/eksight.config.json",
    ]
    assert machine_paths("docs/x.md", "log group /aws/eks/prod/cluster, ~/eksight/deploy.sh, s3://b/tmp/x") == []
    assert machine_paths("eksight/x.py", 'WATCHED = ("/root", "/home", "/opt")') == []
    assert machine_paths("docs/wizard.md", "tar -xzf ~/eksight-bundle.tar.gz -C /tmp/eksight") == []
