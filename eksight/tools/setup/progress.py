"""A spinner with the seconds elapsed, for steps that take more than a couple of seconds (synthesis, cdk diff,
the AWS calls of `eksight check`). On a terminal a thread redraws one line in place, because the work itself
blocks (in a subprocess or a network call); elsewhere (pipes, CI logs) it prints a plain line before and after."""

from __future__ import annotations

import contextlib
import itertools
import sys
import threading
import time
from collections.abc import Iterator

import click


@contextlib.contextmanager
def working(text: str, *, err: bool = False) -> Iterator[None]:
    """`text` while the block runs (spinner and seconds on a terminal), then `text done in N s.`"""
    stream = sys.stderr if err else sys.stdout
    started = time.monotonic()
    stop = threading.Event()

    def spin() -> None:
        for frame in itertools.cycle("|/-\\"):
            click.echo(f"\r{frame} {text} {time.monotonic() - started:.0f} s", nl=False, err=err)
            if stop.wait(0.2):
                break
        click.echo("\r\x1b[K", nl=False, err=err)

    spinner = threading.Thread(target=spin, daemon=True) if stream.isatty() else None
    if spinner:
        spinner.start()
    else:
        click.echo(text, err=err)
    try:
        yield
    finally:
        stop.set()
        if spinner:
            spinner.join()
    click.echo(f"{text} done in {time.monotonic() - started:.0f} s.", err=err)
