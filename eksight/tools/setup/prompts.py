"""A thin layer over questionary (imported lazily): every prompt raises KeyboardInterrupt on Ctrl-C/Ctrl-D
(never returns None), validators are plain `value -> problem | None` functions, and in `--json` mode the
prompts draw on stderr so stdout carries only the JSON result."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

Problem = Callable[[str], str | None]


def _validator(problem: Problem | None) -> Callable[[str], bool | str] | None:
    if problem is None:
        return None

    def validate(value: str) -> bool | str:
        found = problem(value)
        return True if found is None else found

    return validate


class Prompts:
    def __init__(self, *, to_stderr: bool = False) -> None:
        import questionary

        self._q = questionary
        self._kwargs: dict[str, Any] = {}
        if to_stderr:
            from prompt_toolkit.output import create_output

            self._kwargs["output"] = create_output(stdout=sys.stderr)

    def confirm(self, message: str, default: bool = False) -> bool:
        # y/n wait for Enter: answering on the key press let a habitual Enter answer the next question
        return bool(self._q.confirm(message, default=default, auto_enter=False, **self._kwargs).unsafe_ask())

    def text(
        self, message: str, default: str = "", problem: Problem | None = None, instruction: str | None = None
    ) -> str:
        answer = self._q.text(
            message, default=default, validate=_validator(problem), instruction=instruction, **self._kwargs
        ).unsafe_ask()
        return str(answer).strip()

    def select(
        self, message: str, choices: Sequence[tuple[str, Any]], default: Any = None, shortcuts: bool = False
    ) -> Any:
        items = [self._q.Choice(title, value=value) for title, value in choices]
        chosen = next((c for c in items if c.value == default), None)
        return self._q.select(
            message, choices=items, default=chosen, use_shortcuts=shortcuts, use_jk_keys=False, **self._kwargs
        ).unsafe_ask()

    def checkbox(
        self,
        message: str,
        choices: Sequence[tuple[str, Any]],
        checked: Sequence[Any] = (),
        problem: Callable[[list[Any]], str | None] | None = None,
    ) -> list[Any]:
        items = [self._q.Choice(title, value=value, checked=value in checked) for title, value in choices]

        def validate(selected: list[Any]) -> bool | str:
            found = problem(selected) if problem else None
            return True if found is None else found

        return list(self._q.checkbox(message, choices=items, validate=validate, **self._kwargs).unsafe_ask())
