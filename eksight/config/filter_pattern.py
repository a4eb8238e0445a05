"""CloudWatch Logs subscription filter patterns for EKS audit logs.

A small hand-written parser and evaluator of the CloudWatch Logs *JSON* filter-pattern grammar (no
maintained library exists), so a bad custom pattern fails at synth time with its column and reason
rather than at deploy time, and so tests and the replay tool can compute which events a pattern keeps.

Sources: [S] docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html
  [J] .../logs/matching-terms-json-log-events.html (its detailed rules quoted from the AWS source text,
      github.com/awsdocs/amazon-cloudwatch-logs-user-guide doc_source/FilterAndPatternSyntax.md)
  [R] .../logs/regex-expressions.html   [A] AmazonCloudWatchLogs/latest/APIReference/API_PutSubscriptionFilter.html

    pattern   := "" | "{" or "}"                  "" matches every event [S]
    or        := and ("||" and)*                  precedence () > && > || [J]
    and       := unary ("&&" unary)*
    unary     := "(" or ")" | condition
    condition := selector ("=" | "!=") (string | %regex%)          string quoted or bare [J]; regex [R]
               | selector ("=" | "!=" | "<" | ">" | "<=" | ">=") number                        [J]
               | selector ("IS TRUE" | "IS FALSE" | "IS NULL" | "NOT EXISTS")                  [J]
    selector  := "$" ("." [A-Za-z0-9_-]+ | "[" digits "]")+     an index must follow a property [J]

Where the docs are silent the choice is marked DOCS SILENT.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

MAX_PATTERN_LENGTH = 1024  # [A] filterPattern: "Maximum length of 1024"
MAX_REGEXES = 2  # [R] Quotas: "a limit of 2 regex for each filter pattern" for JSON and delimited patterns

_NOISE_PATHS = ("/version", "/metrics", "/livez", "/readyz", "/healthz", "/swagger")
_STREAMING_SUBRESOURCES = ("exec", "attach", "portforward")

DEFAULT_FILTER_PATTERN = (
    '{ ($.kind = "Event") && '
    '(($.stage = "ResponseComplete") || ($.stage = "Panic") || (($.stage = "ResponseStarted") && ('
    + " || ".join(f'($.objectRef.subresource = "{s}")' for s in _STREAMING_SUBRESOURCES)
    + "))) && "
    + " && ".join(f'($.requestURI != "{p}*")' for p in _NOISE_PATHS)
    + " }"
)
"""Audit events at ResponseComplete (and Panic), plus ResponseStarted for exec/attach/portforward so
interactive sessions are seen when they start rather than when they end; health, metrics, version and
swagger probes dropped. (`!=` does not match a missing field, so an event without requestURI is dropped.)"""

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")  # [J] sign, decimal, scientific
_NAME = re.compile(r"[A-Za-z0-9_-]+")  # [J] "alphanumeric strings that also support '-' and '_'"
_INDEX = re.compile(r"\[(\d+)\]")  # [J] "Array elements are denoted with [NUMBER] syntax"
# Bare values: [J] shows alphanumerics, '.', '*' (123.123.*) and signed numbers; '@', '$', '\' and
# unicode "must be enclosed in double quotes". DOCS SILENT on the rest: we ask for quotes.
_BARE = re.compile(r"[A-Za-z0-9_.*:+-]+")
_BARE_END = re.compile(r"[\s()}&|]")
_REGEX_OK = re.compile(r"[A-Za-z0-9:_#=@/;,\-^$?\[\]{}|\\*+.]*")  # [R] the allowed characters/operators
_KEYWORD = re.compile(r"(?:IS\s+(?:TRUE|FALSE|NULL)|NOT\s+EXISTS)\b")
_OPERATORS = ("!=", "<=", ">=", "=", "<", ">")
_OPERATOR_LIKE = re.compile(r"[=!<>~]+|[A-Za-z]+")
_OPERATOR_HELP = "use =, !=, <, >, <=, >=, IS TRUE, IS FALSE, IS NULL or NOT EXISTS"


class FilterPatternError(ValueError):
    """A filter pattern CloudWatch Logs would reject, or one this module does not evaluate."""


@dataclass(frozen=True)
class _Value:
    kind: str  # "string" | "number" | "regex"
    text: str
    number: float = 0.0
    prefix: bool = False  # leading '*': any text may come before `text`
    suffix: bool = False  # trailing '*': any text may come after `text`
    regex: re.Pattern[str] | None = None


@dataclass(frozen=True)
class _Condition:
    path: tuple[str | int, ...]
    op: str  # comparison operator, or "IS TRUE" / "IS FALSE" / "IS NULL" / "NOT EXISTS"
    value: _Value | None = None

    def evaluate(self, event: dict[str, Any]) -> bool:
        found, node = _resolve(event, self.path)
        if self.op == "NOT EXISTS":
            return not found
        if not found:
            # DOCS SILENT: `!=` on a missing field does not match; seen in the CloudWatch console
            # (github.com/DataBiosphere/azul/issues/5884).
            return False
        if self.op in ("IS TRUE", "IS FALSE"):
            return node is (self.op == "IS TRUE")
        if self.op == "IS NULL":
            return node is None
        assert self.value is not None
        return _compare(node, self.op, self.value)


@dataclass(frozen=True)
class _Junction:
    op: str  # "&&" | "||"
    parts: tuple[_Condition | _Junction, ...]

    def evaluate(self, event: dict[str, Any]) -> bool:
        return (all if self.op == "&&" else any)(part.evaluate(event) for part in self.parts)


def _resolve(node: Any, path: tuple[str | int, ...]) -> tuple[bool, Any]:
    for step in path:
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                return False, None  # [J] "If arrayKey is not an array this will be false"
        elif not isinstance(node, dict) or step not in node:
            return False, None
        node = node[step]
    return True, node


def _compare(node: Any, op: str, value: _Value) -> bool:
    """[J] "The SELECTOR must point to a value node (string or number)": on an array or object both `=`
    and `!=` fail to match, so `$.user.groups = "system:masters"` never matches (index it instead:
    `$.user.groups[0]`). DOCS SILENT on true/false/null (they have IS TRUE/FALSE/NULL): treated alike."""
    if isinstance(node, bool) or not isinstance(node, (str, int, float)):
        return False
    if value.kind == "number":
        if isinstance(node, str):  # DOCS SILENT: a JSON string compares as a number only if it is one
            if not _NUMBER.fullmatch(node):
                return False
            node = float(node)
        a, b = float(node), value.number
        return {"=": a == b, "!=": a != b, "<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]
    text = node if isinstance(node, str) else json.dumps(node)
    if value.regex is not None:
        hit = value.regex.search(text) is not None  # [R] %AUTHORIZED% matches "UNAUTHORIZED": unanchored
    elif value.prefix and value.suffix:
        hit = value.text in text
    elif value.prefix:
        hit = text.endswith(value.text)
    elif value.suffix:
        hit = text.startswith(value.text)
    else:
        hit = text == value.text
    return hit if op == "=" else not hit


def _string_value(raw: str) -> _Value:
    """[J] '*' matches "any text at, before, or after a search term" (*Event, Event*), but "Ev*ent will
    only match the actual string Ev*ent": a '*' inside is literal. A lone '*' matches any value."""
    prefix, suffix = raw.startswith("*"), len(raw) > 1 and raw.endswith("*")
    return _Value("string", raw[int(prefix) : len(raw) - int(suffix)], prefix=prefix, suffix=suffix)


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


class FilterPattern:
    """A parsed filter pattern: `matches(message)` says whether CloudWatch Logs would forward the event."""

    def __init__(self, text: str, expression: _Condition | _Junction | None, regex_count: int = 0) -> None:
        self.text = text
        self.regex_count = regex_count
        self._expression = expression  # None: the empty pattern, which matches every event [S]

    def __repr__(self) -> str:
        return f"FilterPattern({self.text!r})"

    def matches(self, message: str | bytes) -> bool:
        """`message` is the raw log event text; anything but a JSON object never matches a JSON pattern."""
        if self._expression is None:
            return True
        try:
            event = json.loads(message, parse_constant=_no_constants)
        except (ValueError, TypeError, RecursionError):
            return False
        return self.matches_event(event)

    def matches_event(self, event: Any) -> bool:
        """As `matches`, for an event already decoded from JSON."""
        if self._expression is None:
            return True
        return isinstance(event, dict) and self._expression.evaluate(event)


class _Parser:
    """Recursive descent over the pattern text; `pos` is the index of the next unread character."""

    def __init__(self, text: str) -> None:
        self.text, self.pos, self.regexes = text, 0, 0

    def fail(self, problem: str, pos: int | None = None) -> FilterPatternError:
        pos = self.pos if pos is None else pos
        near = self.text[pos : pos + 24]
        return FilterPatternError(f"{problem} (column {pos + 1}, {f'near {near!r}' if near else 'at the end'})")

    def accept(self, token: str) -> bool:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1
        if self.text.startswith(token, self.pos):
            self.pos += len(token)
            return True
        return False

    def pattern(self) -> _Condition | _Junction:
        if not self.accept("{"):
            raise FilterPatternError(
                "only JSON filter patterns ({ $.field = value }) are supported for EKS audit logs, which "
                "are JSON events; term, phrase, [space-delimited] and standalone %regex% patterns are not"
            )
        expression = self.disjunction()
        if not self.accept("}"):
            if self.pos >= len(self.text):
                raise self.fail("missing closing '}'")
            if self.text[self.pos] == ")":
                raise self.fail("unbalanced parentheses: ')' without a matching '('")
            raise self.fail("expected '&&', '||' or the closing '}'")
        if self.text[self.pos :].strip():
            self.accept("")
            raise self.fail("unexpected text after the closing '}'")
        return expression

    def disjunction(self) -> _Condition | _Junction:
        return self.chain("||", self.conjunction)  # || binds loosest: () > && > || [J]

    def conjunction(self) -> _Condition | _Junction:
        return self.chain("&&", self.unary)

    def chain(self, op: str, operand: Any) -> _Condition | _Junction:
        parts = [operand()]
        while self.accept(op):
            parts.append(operand())
        return parts[0] if len(parts) == 1 else _Junction(op, tuple(parts))

    def unary(self) -> _Condition | _Junction:
        if self.accept("("):
            start = self.pos - 1
            inner = self.disjunction()
            if not self.accept(")"):
                raise self.fail(f"unbalanced parentheses: the '(' at column {start + 1} is never closed")
            return inner
        return self.condition()

    def selector(self) -> tuple[str | int, ...]:
        if not self.accept("$"):
            raise self.fail("expected a selector starting with '$' (e.g. $.verb)")
        start, text = self.pos - 1, self.text
        path: list[str | int] = []
        while self.pos < len(text) and text[self.pos] in ".[":
            if text[self.pos] == ".":
                match = _NAME.match(text, self.pos + 1)
                if not match:
                    raise self.fail(
                        "empty property name in selector (allowed: letters, digits, '-', '_')", self.pos + 1
                    )
                path.append(match.group())
            else:
                match = _INDEX.match(text, self.pos)
                if not match:
                    raise self.fail("array index must be [NUMBER]; '[*]' and other forms are not supported")
                if not path:
                    raise self.fail("an array index must follow a property (e.g. $.sourceIPs[0])")
                path.append(int(match.group(1)))
            self.pos = match.end()
        if not path:
            raise self.fail("empty selector: '$' must be followed by a property (e.g. $.verb)", start)
        if self.pos < len(text) and not _BARE_END.match(text, self.pos) and text[self.pos] not in "=!<>":
            raise self.fail("invalid character in selector (allowed: letters, digits, '-', '_', '.', [N])")
        return tuple(path)

    def condition(self) -> _Condition:
        path = self.selector()
        self.accept("")
        start = self.pos
        keyword = _KEYWORD.match(self.text, start)
        if keyword:
            self.pos = keyword.end()
            return _Condition(path, " ".join(keyword.group().split()))
        op = next((o for o in _OPERATORS if self.text.startswith(o, start)), None)
        word = _OPERATOR_LIKE.match(self.text, start)
        if word and word.group() != op and (op is None or word.group()[0] in "=!<>~"):
            raise self.fail(f"unknown operator {word.group()!r}; {_OPERATOR_HELP}", start)
        if op is None:
            raise self.fail(f"missing operator after the selector; {_OPERATOR_HELP}", start)
        self.pos += len(op)
        value = self.value()
        if op not in ("=", "!=") and value.kind != "number":
            raise self.fail(f"'{op}' compares numbers only; strings, wildcards and regexes take = or !=", start)
        return _Condition(path, op, value)

    def value(self) -> _Value:
        self.accept("")
        start, text = self.pos, self.text
        if start >= len(text) or text[start] in ")}&|":
            raise self.fail("missing value after the operator")
        if text[start] == '"':
            chars, i = [], start + 1
            while i < len(text) and text[i] != '"':
                i += text[i] == "\\" and i + 1 < len(text)  # \" and \\ escapes, as the AWS CDK writes them
                chars.append(text[i])
                i += 1
            if i >= len(text):
                raise self.fail("unterminated quoted string", start)
            self.pos = i + 1
            return _string_value("".join(chars))
        if text[start] == "%":
            end = text.find("%", start + 1)
            if end < 0:
                raise self.fail("unterminated regex: it must end with '%'", start)
            self.pos = end + 1
            return self.regex(text[start + 1 : end], start)
        match = _BARE.match(text, start)
        if not match or (match.end() < len(text) and not _BARE_END.match(text, match.end())):
            raise self.fail(
                "a value with characters other than letters, digits and . - _ : + * must be enclosed in double quotes",
                start,
            )
        self.pos = match.end()
        if _NUMBER.fullmatch(match.group()):
            return _Value("number", match.group(), float(match.group()))
        return _string_value(match.group())

    def regex(self, body: str, start: int) -> _Value:
        self.regexes += 1
        if self.regexes > MAX_REGEXES:
            raise self.fail(f"too many regexes: CloudWatch allows at most {MAX_REGEXES} per filter pattern", start)
        allowed = _REGEX_OK.match(body)
        assert allowed  # a `*` pattern always matches, up to the first character not allowed
        bad = allowed.end()
        if not body or bad < len(body):
            problem = (
                "empty regex"
                if not body
                else "'(' and ')' are not supported in CloudWatch regex"
                if body[bad] in "()"
                else f"character {body[bad]!r} is not allowed in CloudWatch regex"
            )
            raise self.fail(problem, start + 1 + bad)
        try:
            return _Value("regex", body, regex=re.compile(body))
        except re.error as error:
            raise self.fail(f"invalid regex: {error.msg}", start) from None


def parse(pattern: str) -> FilterPattern:
    """Parse a pattern; raise FilterPatternError naming the column and the problem. "" is CloudWatch's
    match-everything pattern [S]; anything else must be a JSON pattern (EKS audit events are JSON)."""
    if not isinstance(pattern, str):
        raise FilterPatternError(f"filter pattern must be a string, not {type(pattern).__name__}")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise FilterPatternError(
            f"filter pattern is {len(pattern)} characters; CloudWatch Logs allows {MAX_PATTERN_LENGTH}"
        )
    if pattern == "":
        return FilterPattern("", None)
    if not pattern.strip():
        raise FilterPatternError('filter pattern is only whitespace; use "" to match every event')
    parser = _Parser(pattern)
    return FilterPattern(pattern, parser.pattern(), parser.regexes)


def validate(pattern: str) -> FilterPattern:
    """Check a *custom* pattern from the deployment config and return it parsed. Unlike `parse`, an empty
    or whitespace-only pattern is refused: in the config it is a mistake (the config treats "" as "use
    the default"); omit the option for the default, or use `{ $.kind = "Event" }` to forward every event."""
    if isinstance(pattern, str) and not pattern.strip():
        raise FilterPatternError("filter pattern is empty")
    return parse(pattern)
