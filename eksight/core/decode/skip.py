"""Walking past a JSON value without parsing or holding it: a document too large to hold, a value nested too deep
to parse. A tokenizer of strings and brackets, with no recursion, that resumes across chunks of text."""

from __future__ import annotations

from eksight.core.decode.formats import SCALAR_END, STRING_BODY, STRUCTURE
from eksight.core.decode.model import SAMPLE_BYTES, TOO_DEEP


class ValueSkipper:
    """One value being skipped: where it started, why, its first bytes (the sample) and how far it has got."""

    __slots__ = ("deepest", "depth", "escape", "in_string", "length", "offset", "reason", "sample", "scalar")

    def __init__(self, offset: int, first: int, reason: str) -> None:
        self.offset = offset
        self.reason = reason
        self.sample = b""
        self.length = 0
        self.depth = 0
        self.deepest = 0
        self.in_string = False
        self.escape = False
        self.scalar = first not in b'{["'

    def advance(self, buf: bytes, pos: int, stop: int) -> tuple[int, bool]:
        """Walk ``buf[pos:stop]``. Returns where it stopped and whether the value ended there."""
        i, done = pos, False
        while i < stop:
            if self.scalar:
                match = SCALAR_END.search(buf, i, stop)
                i, done = (match.start(), True) if match else (stop, False)
                break
            if self.escape:
                self.escape = False
                i += 1
                continue
            if self.in_string:
                i, done = self._string(buf, i, stop)
                if done:
                    break
                continue
            match = STRUCTURE.search(buf, i, stop)
            if match is None:
                i = stop
                break
            i = match.end()
            bracket = buf[match.start()]
            if bracket == 0x22:  # '"'
                self.in_string = True
            elif bracket in b"{[":
                self.depth += 1
                self.deepest = max(self.deepest, self.depth)
            else:
                self.depth -= 1
                if self.depth <= 0:
                    done = True
                    break
        if len(self.sample) < SAMPLE_BYTES:
            self.sample += buf[pos : min(i, pos + SAMPLE_BYTES - len(self.sample))]
        self.length += i - pos
        return i, done

    def detail(self, ending: str, max_document: int) -> str:
        """What is wrong with the value, once skipped (``ending``: how it ended, when not at its own end)."""
        if self.reason == "nesting_too_deep":
            return TOO_DEEP + ending
        return f"top-level JSON value of {self.length} bytes exceeds the limit of {max_document} bytes{ending}"

    def _string(self, buf: bytes, i: int, stop: int) -> tuple[int, bool]:
        """Inside a string: returns where the walk goes on, and whether that ends the value (a top-level string)."""
        match = STRING_BODY.match(buf, i, stop)
        j = match.end() if match else i
        if j >= stop:
            return stop, False
        if buf[j] == 0x22:
            self.in_string = False
            return j + 1, not self.depth
        self.escape = True  # a backslash as the last byte
        return j + 1, False
