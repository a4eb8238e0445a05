"""The answers of the last `eksight generate` run, offered again for one hour (`--nocache` skips them).

Stored as JSON in the user's config directory (click.get_app_dir: $XDG_CONFIG_HOME/eksight or
~/.config/eksight on Linux, the platform's equivalent elsewhere), readable by the user only. A cache that
is stale, unreadable or from an incompatible version is ignored, never an error.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import click

from eksight.tools.setup.answers import Answers

TTL_SECONDS = 3600
FILE_NAME = "generate-answers.json"
VERSION = 1


def cache_path() -> Path:
    return Path(click.get_app_dir("eksight")) / FILE_NAME


@dataclass(frozen=True)
class Cached:
    answers: Answers
    saved_at: float

    def age_text(self, now: float | None = None) -> str:
        minutes = int(((now or time.time()) - self.saved_at) // 60)
        return "just now" if minutes < 1 else f"{minutes} minute{'s' if minutes != 1 else ''} ago"


def load(now: float | None = None, path: Path | None = None) -> Cached | None:
    path = path or cache_path()
    now = time.time() if now is None else now
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        saved_at = float(data["saved_at"])
        if data.get("version") != VERSION or not 0 <= now - saved_at <= TTL_SECONDS:
            return None
        answers = Answers.from_dict(data["answers"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return Cached(answers, saved_at) if answers.regions else None


def save(answers: Answers, now: float | None = None, path: Path | None = None) -> Path:
    path = path or cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as sink:
        json.dump(
            {"version": VERSION, "saved_at": time.time() if now is None else now, "answers": answers.to_dict()},
            sink,
            indent=2,
        )
    os.replace(tmp, path)
    return path
