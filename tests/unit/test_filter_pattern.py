"""Tests for eksight.config.filter_pattern: the CloudWatch Logs JSON filter-pattern parser and evaluator.

Examples marked [J] are the AWS documentation's own examples (FilterAndPatternSyntax / "Using filter
patterns to match terms in JSON log events") with the result the documentation states.
"""

from __future__ import annotations

import functools
import gzip
import json
from pathlib import Path

import pytest

from eksight.config import filter_pattern as fp
from eksight.config.filter_pattern import FilterPatternError, parse, validate

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
DEV_AUDIT = DATASETS / "dev-scenarios" / "audit.jsonl.gz"
PANTHER = DATASETS / "panther-eks" / "events.jsonl"

# Restated here on purpose (not imported) so the expectations do not come from the module under test.
NOISE_PREFIXES = ("/version", "/metrics", "/livez", "/readyz", "/healthz", "/swagger")
STREAMING = ("exec", "attach", "portforward")


def match(pattern: str, event: object) -> bool:
    return parse(pattern).matches(json.dumps(event))


def error_of(pattern: str, *, via=validate) -> str:
    with pytest.raises(FilterPatternError) as caught:
        via(pattern)
    return str(caught.value)


# --------------------------------------------------------------------------- parse errors


def test_unbalanced_brace_names_the_problem_and_column():
    message = error_of('{ $.verb = "get"')
    assert "missing closing '}'" in message and "column 17" in message


def test_unclosed_parenthesis_points_at_the_open_paren():
    message = error_of('{ ($.verb = "get" }')
    assert "the '(' at column 3 is never closed" in message


def test_stray_closing_parenthesis():
    message = error_of('{ $.verb = "get") }')
    assert "')' without a matching '('" in message and "column 17" in message


def test_text_after_the_closing_brace():
    assert "unexpected text after the closing '}'" in error_of('{ $.verb = "get" } }')


def test_missing_operator():
    message = error_of('{ $.verb "get" }')
    assert "missing operator" in message and "column 10" in message


@pytest.mark.parametrize("operator", ["==", "~", "=>", "<>", "contains", "is"])
def test_unknown_operator(operator):
    message = error_of(f"{{ $.verb {operator} get }}")
    assert f"unknown operator {operator!r}" in message and "column 10" in message


@pytest.mark.parametrize("value", ['"abc"', "abc", "abc*", "%abc%"])
def test_ordering_operator_with_a_string_is_rejected(value):
    pattern = f"{{ $.responseStatus.code > {value} }}"
    message = error_of(pattern)
    assert "'>' compares numbers only" in message and f"column {pattern.index('>') + 1}" in message


def test_two_regexes_allowed_three_rejected():
    two = "{ $.verb = %^get$% && $.requestURI = %^/api/v1/secrets% }"
    assert validate(two).regex_count == 2
    three = two[:-1] + "|| $.userAgent = %kubectl% }"
    message = error_of(three)
    assert "too many regexes" in message and f"column {three.index('%kubectl%') + 1}" in message


@pytest.mark.parametrize(
    "regex, problem",
    [
        ("(get|list)", "'(' and ')' are not supported"),
        ("get!", "character '!' is not allowed"),
        ("gét", "character 'é' is not allowed"),
        ("[a-", "invalid regex"),
    ],
)
def test_regex_restrictions(regex, problem):
    assert problem in error_of(f"{{ $.verb = %{regex}% }}")


def test_length_limit_is_1024_characters():
    base = '{ $.verb = "get" }'
    exact = base[:-1] + " " * (fp.MAX_PATTERN_LENGTH - len(base)) + "}"
    assert len(exact) == 1024 and validate(exact).matches('{"verb": "get"}')
    message = error_of(exact[:-1] + " }")
    assert "1025 characters" in message and "1024" in message


@pytest.mark.parametrize(
    "pattern, problem, column",
    [
        ("{ $ = 1 }", "empty selector", 3),
        ("{ $. = 1 }", "empty property name", 5),
        ("{ $.user. = 1 }", "empty property name", 10),
        ("{ = 1 }", "expected a selector starting with '$'", 3),
        ("{ $.groups[*] = x }", "'[*]' and other forms are not supported", 11),
        ("{ $[0] = x }", "an array index must follow a property", 4),
        ("{ $.a@b = x }", "invalid character in selector", 6),
    ],
)
def test_selector_errors(pattern, problem, column):
    message = error_of(pattern)
    assert problem in message and f"column {column}" in message


@pytest.mark.parametrize(
    "pattern, problem",
    [
        ('{ $.verb = "get }', "unterminated quoted string"),
        ("{ $.verb = %get }", "unterminated regex"),
        ("{ $.verb = }", "missing value"),
        ("{ $.user.username = admin@corp }", "must be enclosed in double quotes"),
        ("{ $.requestURI = /api/* }", "must be enclosed in double quotes"),  # conservative: docs show only . and *
        ("{ $.verb = get && }", "expected a selector"),
    ],
)
def test_value_errors(pattern, problem):
    assert problem in error_of(pattern)


@pytest.mark.parametrize("pattern", ["ERROR", '"Forbidden"', "?ERROR ?WARN", "[ip, user, ...]", "%AUTH%"])
def test_non_json_patterns_are_refused_honestly(pattern):
    assert "only JSON filter patterns" in error_of(pattern)


def test_empty_pattern_matches_everything_but_is_not_a_valid_custom_pattern():
    # "" is CloudWatch's match-all pattern; the deployment config refuses it (and whitespace) as a mistake.
    everything = parse("")
    assert everything.matches("not json at all") and everything.matches('{"kind": "Event"}')
    assert "empty" in error_of("")
    assert "empty" in error_of("  \t ")
    assert "whitespace" in error_of("   ", via=parse)


def test_validate_returns_the_parsed_pattern():
    parsed = validate('{ $.verb = "delete" }')
    assert isinstance(parsed, fp.FilterPattern)
    assert parsed.matches('{"verb": "delete"}') and not parsed.matches('{"verb": "get"}')


def test_validate_rejects_non_strings():
    assert "must be a string" in error_of(None)


# --------------------------------------------------------------------------- semantics

EVENT = {
    "kind": "Event",
    "verb": "create",
    "requestURI": "/api/v1/namespaces/prod/pods/web-1/exec?command=sh",
    "user": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]},
    "sourceIPs": ["203.0.113.7", "10.0.0.1"],
    "objectRef": {"resource": "pods", "subresource": "exec"},
    "responseStatus": {"code": 101},
    "latency": "250",
    "impersonatedUser": None,
    "dryRun": False,
    "cached": True,
    "literal": "Ev*ent",
}


@pytest.mark.parametrize(
    "pattern, expected",
    [
        ('{ $.requestURI = "/api/v1/*" }', True),  # prefix match (trailing *)
        ('{ $.requestURI = "/api/v2/*" }', False),
        ('{ $.requestURI = "*command=sh" }', True),  # suffix match (leading *)
        ('{ $.requestURI = "*command=bash" }', False),
        ('{ $.requestURI = "*/pods/*" }', True),  # contains (both ends)
        ('{ $.requestURI = "*/deployments/*" }', False),
        ('{ $.requestURI = "/api/*/exec?command=sh" }', False),  # [J] a '*' inside is literal ...
        ('{ $.literal = "Ev*ent" }', True),  # ... and matches only the actual string
        ("{ $.verb = * }", True),  # lone '*': any value
        ("{ $.nothing = * }", False),
        ('{ $.verb = "creat" }', False),  # without '*', equality is exact
        ("{ $.sourceIPs[0] != 203.0.* }", False),  # [J]-style unquoted wildcard
        ("{ $.sourceIPs[1] != 203.0.* }", True),
    ],
)
def test_wildcards(pattern, expected):
    assert match(pattern, EVENT) is expected


def test_not_equal_on_a_missing_field_does_not_match():
    # Not in the docs; observed in the CloudWatch console (DataBiosphere/azul#5884): `!=` needs the field.
    assert match('{ $.verb != "get" }', EVENT) is True
    assert match('{ $.annotations.reason != "x" }', EVENT) is False
    assert match("{ $.nothing != 5 }", EVENT) is False


@pytest.mark.parametrize(
    "pattern, expected",
    [
        ("{ $.responseStatus.code = 101 }", True),
        ("{ $.responseStatus.code != 101 }", False),
        ("{ $.responseStatus.code >= 101 }", True),
        ("{ $.responseStatus.code > 101 }", False),
        ("{ $.responseStatus.code < 2e2 }", True),
        ("{ $.responseStatus.code <= 1.01e2 }", True),
        ("{ $.responseStatus.code > +100.5 }", True),
        ("{ $.responseStatus.code < -1 }", False),
        ("{ $.latency > 200 }", True),  # numeric text in a JSON string compares as a number (our choice)
        ("{ $.verb < 5 }", False),
        ("{ $.verb != 5 }", False),  # a non-numeric string never compares
        ('{ $.responseStatus.code = "101" }', True),
        ('{ $.responseStatus.code = "1*" }', True),
    ],
)
def test_numbers(pattern, expected):
    assert match(pattern, EVENT) is expected


@pytest.mark.parametrize(
    "pattern, expected",
    [
        ("{ $.cached IS TRUE }", True),
        ("{ $.cached IS FALSE }", False),
        ("{ $.dryRun IS FALSE }", True),
        ("{ $.dryRun IS TRUE }", False),
        ("{ $.verb IS TRUE }", False),
        ("{ $.nothing IS FALSE }", False),
        ("{ $.impersonatedUser IS NULL }", True),
        ("{ $.verb IS NULL }", False),
        ("{ $.nothing IS NULL }", False),
        ("{ $.nothing NOT EXISTS }", True),
        ("{ $.impersonatedUser NOT EXISTS }", False),
        ("{ $.verb.deeper NOT EXISTS }", True),
        ("{ $.verb NOT   EXISTS }", False),
        ("{ $.dryRun = false }", False),
        ("{ $.impersonatedUser = * }", False),  # comparisons skip true/false/null
    ],
)
def test_booleans_null_and_existence(pattern, expected):
    assert match(pattern, EVENT) is expected


@pytest.mark.parametrize(
    "pattern, expected",
    [
        ("{ $.objectRef.subresource = exec }", True),
        ("{ $.objectRef.resource = secrets }", False),
        ('{ $.user.groups[0] = "system:masters" }', True),
        ('{ $.user.groups[1] = "system:masters" }', False),
        ('{ $.sourceIPs[5] = "*" }', False),
        ('{ $.verb[0] = "c*" }', False),
        # [J] a selector must name a string or number: an array of strings matches neither = nor !=
        ('{ $.user.groups = "system:masters" }', False),
        ('{ $.user.groups != "system:masters" }', False),
        ('{ $.user != "x" }', False),
    ],
)
def test_nested_and_arrays(pattern, expected):
    assert match(pattern, EVENT) is expected


DOC_EVENT = {  # [J] the documentation's example event
    "eventType": "UpdateTrail",
    "sourceIPAddress": "111.111.111.111",
    "arrayKey": ["value", "another value"],
    "objectList": [{"name": "a", "id": 1}, {"name": "b", "id": 2}],
    "SomeObject": None,
    "ThisFlag": True,
}
DOC_COMPOUND = {
    "user": {"id": 1, "email": "John.Stiles@example.com"},
    "users": [{"id": 2, "email": "John.Doe@example.com"}, {"id": 3, "email": "Jane.Doe@example.com"}],
    "actions": ["GET", "PUT", "DELETE"],
    "coordinates": [[0, 1, 2], [4, 5, 6], [7, 8, 9]],
}


@pytest.mark.parametrize(
    "pattern",
    [
        '{ $.eventType = "UpdateTrail" }',
        "{ $.sourceIPAddress != 123.123.* }",
        '{ $.arrayKey[0] = "value" }',
        "{ $.objectList[1].id = 2 }",
        "{ $.SomeObject IS NULL }",
        "{ $.SomeOtherObject NOT EXISTS }",
        "{ $.ThisFlag IS TRUE }",
    ],
)
def test_documentation_examples_match(pattern):
    assert match(pattern, DOC_EVENT)


@pytest.mark.parametrize(
    "pattern, expected",
    [
        ('{ ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") }', True),
        ('{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[2] = "GET" }', False),
        # && binds tighter than ||: these two differ only by the parentheses [J]
        (
            '{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch && $.actions[2] = nomatch }',
            True,
        ),
        (
            '{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch) && $.actions[2] = nomatch }',
            False,
        ),
        ("{ $.coordinates[1][2] = 6 }", True),
    ],
)
def test_documentation_compound_examples_and_precedence(pattern, expected):
    assert match(pattern, DOC_COMPOUND) is expected


def test_selector_on_an_array_fails_both_ways():  # [J] JSON special considerations
    assert not match("{ $.users = 1 }", {"users": [1, 2, 3]})
    assert not match("{ $.users != 1 }", {"users": [1, 2, 3]})


@pytest.mark.parametrize(
    "pattern, expected",
    [
        ("{ $.user.username = %admin% }", True),  # unanchored search: "kubernetes-admin"
        ("{ $.user.username = %^admin% }", False),
        ("{ $.verb = %^(create)$% }", None),  # parentheses: rejected (checked in the error tests)
        ("{ $.verb = %^creat[a-z]$% }", True),
        ("{ $.verb = %^delete|^patch% }", False),
        ("{ $.verb != %^get$% }", True),
        ("{ $.sourceIPs[0] = %\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}% }", True),
        ("{ $.responseStatus.code = %^10[0-9]$% }", True),
        ("{ $.user.groups = %masters% }", False),
    ],
)
def test_regex_values(pattern, expected):
    if expected is None:
        with pytest.raises(FilterPatternError):
            parse(pattern)
    else:
        assert match(pattern, EVENT) is expected


@pytest.mark.parametrize(
    "message",
    ["", "not json", "[1, 2]", '"a string"', "null", "42", '{"kind": "Event"', '{"kind": NaN}', "{'kind': 'Event'}"],
)
def test_non_json_or_non_object_messages_never_match(message):
    assert not parse("{ $.anything NOT EXISTS }").matches(message)
    assert not parse(fp.DEFAULT_FILTER_PATTERN).matches(message)


def test_matches_event_takes_decoded_events():
    pattern = parse('{ $.verb = "create" }')
    assert pattern.matches_event(EVENT) and not pattern.matches_event([EVENT]) and not pattern.matches_event(None)


def test_whitespace_and_bare_operators():
    pattern = parse("{$.verb=create&&($.objectRef.subresource=exec||$.objectRef.subresource=attach)}")
    assert pattern.matches(json.dumps(EVENT))
    assert parse('\n{\n  $.verb  !=  "get"\n}\n').matches(json.dumps(EVENT))


def test_quoted_escapes():
    assert match('{ $.x = "say \\"hi\\" \\\\ bye" }', {"x": 'say "hi" \\ bye'})


# --------------------------------------------------------------------------- the default pattern


def test_default_pattern_is_valid_and_within_limits():
    parsed = validate(fp.DEFAULT_FILTER_PATTERN)
    assert len(fp.DEFAULT_FILTER_PATTERN) <= 1024 and parsed.regex_count == 0


def _expected_kept(event: object) -> bool:
    """The default pattern's intent, restated in plain Python from the event fields."""
    if not isinstance(event, dict) or event.get("kind") != "Event":
        return False
    stage, uri = event.get("stage"), event.get("requestURI")
    object_ref = event.get("objectRef") if isinstance(event.get("objectRef"), dict) else {}
    wanted = stage in ("ResponseComplete", "Panic") or (
        stage == "ResponseStarted" and object_ref.get("subresource") in STREAMING
    )
    return wanted and isinstance(uri, str) and not uri.startswith(NOISE_PREFIXES)


@functools.cache
def _rows(path: Path) -> tuple[tuple[str, object, bool], ...]:
    """(raw line, decoded event or None, kept by the default pattern) for each line of a dataset."""
    if not path.exists():
        pytest.skip(f"dataset {path} not present (needs ../shared/datasets beside the repository)")
    pattern = parse(fp.DEFAULT_FILTER_PATTERN)
    opener = gzip.open if path.suffix == ".gz" else open
    rows = []
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in (raw.rstrip("\n") for raw in handle if raw.strip()):
            try:
                event = json.loads(line)
            except ValueError:
                event = None
            rows.append((line, event, pattern.matches(line)))
    return tuple(rows)


REAL = pytest.mark.parametrize("path", [DEV_AUDIT, PANTHER], ids=["dev-scenarios", "panther-eks"])


@REAL
def test_default_pattern_on_real_events(path):
    rows = _rows(path)
    assert rows
    for line, event, kept in rows:
        if not isinstance(event, dict) or event.get("kind") != "Event":
            assert not kept, line[:200]  # not JSON objects / not audit events: simply not matched
            continue
        stage, uri = event.get("stage"), event.get("requestURI")
        subresource = (event.get("objectRef") or {}).get("subresource")
        if kept:
            assert stage in ("ResponseComplete", "Panic") or (
                stage == "ResponseStarted" and subresource in STREAMING
            ), line[:200]
        if stage == "ResponseComplete" and isinstance(uri, str) and not uri.startswith(NOISE_PREFIXES):
            assert kept, line[:200]
        if isinstance(uri, str) and uri.startswith(NOISE_PREFIXES):
            assert not kept, line[:200]
        if stage == "ResponseStarted" and subresource == "exec":
            assert kept, line[:200]
        assert kept == _expected_kept(event), line[:200]


def test_default_pattern_counts_on_the_dev_set():
    rows = _rows(DEV_AUDIT)
    events = [event for _, event, _ in rows]
    kept = sum(k for _, _, k in rows)
    complete_noise = sum(
        e["stage"] == "ResponseComplete" and e["requestURI"].startswith(NOISE_PREFIXES) for e in events
    )
    started_other = sum(
        e["stage"] == "ResponseStarted" and (e.get("objectRef") or {}).get("subresource") not in STREAMING
        for e in events
    )
    started_streaming = sum(
        e["stage"] == "ResponseStarted" and (e.get("objectRef") or {}).get("subresource") in STREAMING for e in events
    )
    # All dev events are audit events at ResponseComplete or ResponseStarted, so every drop is either a
    # probe at ResponseComplete or a non-streaming ResponseStarted; nothing else may be dropped.
    assert all(e["kind"] == "Event" and e["stage"] in ("ResponseComplete", "ResponseStarted") for e in events)
    assert len(rows) - kept == complete_noise + started_other
    assert complete_noise > 0 and started_other > 0 and started_streaming > 0  # every branch is exercised
    # At the time of writing: 105,575 events, 86,975 kept, 18,600 dropped (355 probes + 18,245 ResponseStarted).


@REAL
def test_broken_copies_of_real_events_do_not_match(path):
    pattern = parse(fp.DEFAULT_FILTER_PATTERN)
    line, event, _ = next(row for row in _rows(path) if row[2])
    assert pattern.matches(line)
    assert not pattern.matches(line[: len(line) // 2])  # truncated JSON
    assert not pattern.matches(json.dumps([event]))  # JSON, but not an object
    assert not pattern.matches(json.dumps({**event, "kind": "Status"}))  # JSON object, not an audit event
    assert not pattern.matches(json.dumps({k: v for k, v in event.items() if k != "requestURI"}))
