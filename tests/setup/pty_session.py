"""Drive `eksight generate` through a pseudo-terminal (pexpect), as a person at a terminal would.

The child gets its own HOME and XDG_CONFIG_HOME (so the answer cache is the test's) and AWS settings that
make every credential lookup fail at once, offline: no AWS_* variables, /dev/null config files, no instance
metadata. `credentials(endpoint)` instead points boto3 at a local moto server.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pexpect

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv" / "bin" / "python"
DOWN, UP, ENTER, SPACE, CLEAR_LINE = "\x1b[B", "\x1b[A", "\r", " ", "\x15"


def offline_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        HOME=str(home / "home"),
        XDG_CONFIG_HOME=str(home / "xdg"),
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        TERM="xterm",
        PROMPT_TOOLKIT_NO_CPR="1",
        NO_COLOR="1",
        PYTHONPATH=str(ROOT),  # this checkout's eksight, whatever the venv's editable install points at
    )
    (home / "home").mkdir(parents=True, exist_ok=True)
    env.update(extra)
    return env


def credentials(endpoint: str) -> dict[str, str]:
    """Working (fake) credentials against a local moto server."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
    }


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A local moto server (loopback, a free port); yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        threading.Thread(target=server.stop, daemon=True).start()


class Screen:
    """Just enough of a VT100 to read what prompt_toolkit shows: it redraws by moving the cursor and writing only
    the characters that changed, so the raw stream does not hold the text a person reads; this does."""

    _SEQUENCE = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])|\x1b[()][A-Z0-9]|\x1b[=>]|[\r\n\b]|[^\x1b\r\n\b]+")

    def __init__(self) -> None:
        self.rows: list[list[str]] = [[]]
        self.row = self.col = 0

    def write(self, data: str) -> None:
        for match in self._SEQUENCE.finditer(data):
            token = match[0]
            if token == "\r":
                self.col = 0
            elif token == "\n":
                self._move(self.row + 1, self.col)
            elif token == "\b":
                self.col = max(0, self.col - 1)
            elif match[2]:
                self._control(match[1], match[2])
            elif not token.startswith("\x1b"):
                line = self.rows[self.row]
                line.extend(" " * (self.col + len(token) - len(line)))
                line[self.col : self.col + len(token)] = token
                self.col += len(token)

    def flush(self) -> None:
        pass

    def _move(self, row: int, col: int) -> None:
        self.row, self.col = max(0, row), max(0, col)
        while len(self.rows) <= self.row:
            self.rows.append([])

    def _control(self, argument: str, command: str) -> None:
        count = int(argument) if argument.isdigit() else 1
        if command == "A":
            self._move(self.row - count, self.col)
        elif command == "B":
            self._move(self.row + count, self.col)
        elif command == "C":
            self.col += count
        elif command == "D":
            self.col = max(0, self.col - count)
        elif command == "G":
            self.col = count - 1
        elif command == "K" and argument in ("", "0"):
            del self.rows[self.row][self.col :]
        elif command == "J" and argument in ("", "0"):
            del self.rows[self.row][self.col :]
            del self.rows[self.row + 1 :]

    def text(self) -> str:
        return "\n".join("".join(line).rstrip() for line in self.rows)


class _Tee:
    def __init__(self, *sinks: Any) -> None:
        self.sinks = sinks

    def write(self, data: str) -> None:
        for sink in self.sinks:
            sink.write(data)

    def flush(self) -> None:
        for sink in self.sinks:
            sink.flush()


def _pattern(text: str) -> re.Pattern[str]:
    """`text` in the output stream, where a redraw may have written a space as a cursor-forward."""
    return re.compile(r"(?:[ ]|\x1b\[\d*C)+".join(re.escape(word) for word in text.split(" ")))


class Terminal:
    def __init__(
        self, args: list[str], env: dict[str, str], cwd: Path, timeout: float = 30, logfile: Path | None = None
    ) -> None:
        self.child = pexpect.spawn(
            str(PYTHON),
            ["-m", "eksight.tools.cli", "generate", *args],
            env=env,
            cwd=str(cwd),
            encoding="utf-8",
            timeout=timeout,
            dimensions=(50, 160),
        )
        self.vt = Screen()
        self._log = logfile.open("w", encoding="utf-8") if logfile else None
        self.child.logfile_read = _Tee(self.vt, *([self._log] if self._log else []))

    def expect(self, text: str) -> str:
        """Wait for `text` on screen; returns what came before it."""
        self.child.expect(_pattern(text))
        return self.child.before

    def on_screen(self, text: str, timeout: float = 15) -> None:
        """Wait until `text` is shown (e.g. a validation message redrawn over an older one)."""
        deadline = time.monotonic() + timeout
        while " ".join(text.split()) not in " ".join(self.vt.text().split()):
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not on screen:\n{self.vt.text()[-2000:]}")
            with contextlib.suppress(pexpect.TIMEOUT):
                self.child.read_nonblocking(4096, timeout=0.2)  # fed to the screen through logfile_read

    def confirm(self, prompt: str, yes: bool) -> None:
        """A y/n question: the key, then Enter (the answer is taken on Enter)."""
        self.expect(prompt)
        self.child.send("y" if yes else "n")
        self.child.send(ENTER)

    def answer(self, prompt: str, text: str, clear: bool = False) -> None:
        self.expect(prompt)
        if clear:  # drop a pre-filled default
            self.child.send(CLEAR_LINE)
        self.child.sendline(text)

    def keys(self, *keys: str) -> None:
        for key in keys:
            self.child.send(key)

    def choose(self, prompt: str, *keys: str) -> None:
        """Select prompt: move (arrow escapes or a shortcut key), then Enter."""
        self.expect(prompt)
        self.keys(*keys, ENTER)

    def menu(self, shortcut: str) -> None:
        """Pick an entry of the advanced-options menu by its shortcut key."""
        self.choose("Done when finished", shortcut)

    def finish(self) -> int:
        self.child.expect(pexpect.EOF)
        self.child.close()
        if self._log:
            self._log.close()
        return self.child.exitstatus if self.child.exitstatus is not None else -(self.child.signalstatus or 1)

    @property
    def screen(self) -> str:
        """Everything shown so far, as a person saw it (a terminal without a scroll limit)."""
        return self.vt.text()
