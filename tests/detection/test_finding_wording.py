"""Every finding reads as plain language: produced on the shared dev set and on a small simulated cluster (seed 7,
with drift), each one is read whole and rejected for internal identifiers, Python reprs, contradictions, anomaly
findings that name none of the objects they touched, and text that does not say when and where.

The checks read the text only; what the findings should say is judged from the finding's own structured fields
(cluster, the anomaly's object, its per-feature counts), never from the wording under test.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from eksight.core.archive_object import build_detector
from eksight.core.decode import SourceContext, decode_path
from eksight.core.detector import BASELINE_BATCH
from eksight.core.state import MemoryStateStore

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"

# Feature, signal and label names of eksight.core.behaviour, which belong in details.anomaly.profile, not in text.
INTERNAL = [
    re.compile(r"\w+@\(cluster\)"),
    re.compile(r"\w+@[a-z0-9-]+\b(?!\.)"),  # class@namespace (e-mail addresses continue with a dot)
    re.compile(r"\(cluster\)"),
    re.compile(r"\b(UNSEEN|RARE|INFREQUENT|FREQUENT)\b"),
    re.compile(r"\b(before|of \d+)\)"),  # "(0 of 9 before)"
    re.compile(r"\bsurprise_bits\b|\bbits\b"),
    re.compile(r"\(unnamed\)"),  # say what is known instead: a generated name's prefix, or that none was logged
]
# Python or JSON reprs: None, [], ['x'], {...}, True/False.
REPRS = re.compile(r"(?<!\. )(?<!^)\bNone\b|\[\]|\[['\"]|[{}]|\b(True|False)\b|\(\)")
# lower_snake_case words that are not part of a quoted value, a path, an address or a user agent.
SNAKE = re.compile(r"(?<![\w./:@'\"=-])[a-z]+(?:_[a-z0-9]+)+(?![\w/:@'\"=-]|\.\w)")
WHEN = re.compile(r"\b\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2})? UTC\b")
NEVER = re.compile(r"\b(never|first|UNSEEN)\b", re.IGNORECASE)
PRIOR_COUNT = re.compile(r"\b([1-9][\d,]*) of (its|the|\d)")


def texts(finding: dict[str, Any]) -> dict[str, str]:
    anomaly = finding["details"].get("anomaly", {})
    return {
        "title": finding["title"],
        "description": finding["description"],
        "remediation": finding["remediation"],
        "baseline": anomaly.get("baseline", ""),
        "deviation": anomaly.get("deviation", ""),
    }


def unquoted(text: str) -> str:
    """The text without quoted values (user agents, label selectors, commands): those are data, shown as logged."""
    return re.sub(r"'[^']*'|\"[^\"]*\"", "''", text)


def problems(finding: dict[str, Any]) -> list[str]:
    found = []
    for field, text in texts(finding).items():
        plain = unquoted(text)
        for pattern in INTERNAL:
            if match := pattern.search(plain):
                found.append(f"{field}: internal identifier {match.group(0)!r}")
        if match := REPRS.search(plain):
            found.append(f"{field}: Python repr {match.group(0)!r}")
        if match := SNAKE.search(plain):
            found.append(f"{field}: snake_case name {match.group(0)!r}")
        for clause in re.split(r";|\. ", plain):
            if NEVER.search(clause) and (match := PRIOR_COUNT.search(clause)):
                found.append(f"{field}: 'never'/'first' next to a prior count {match.group(0)!r}: {clause.strip()!r}")
    description = finding["description"]
    if not WHEN.search(description):
        found.append("description: no UTC time")
    if finding["cluster"] not in ("", "unknown") and f"cluster {finding['cluster']}" not in description:
        found.append(f"description: does not name cluster {finding['cluster']}")
    principal = finding.get("principal", {})
    for name in (principal.get("name", ""), principal.get("arn", "").rpartition("/")[2]):
        if name and name.lower() in description.lower() and name not in description:
            found.append(f"description: spells the principal's {name!r} in another case")
    if finding["detector"] == "anomaly":
        found.extend(_anomaly_problems(finding))
    if len(finding["title"]) > 120:
        found.append(f"title: {len(finding['title'])} characters")
    return found


def _anomaly_problems(finding: dict[str, Any]) -> list[str]:
    found = []
    touched = finding["details"].get("resource", {})
    if touched.get("kind") and not finding["resources"]:
        found.append(f"resources: empty, but the anomaly touched {touched}")
    if touched.get("name") and touched["name"] not in finding["description"]:
        found.append(f"description: does not name the object {touched['name']!r}")
    profile = finding["details"]["anomaly"]["profile"]
    deviation = finding["details"]["anomaly"]["deviation"]
    # A request or namespace the profile counted before is never called new.
    claims = {"action": "'{}' is a request it never made", "namespace": "never worked in namespace {}"}
    for feature, claim in claims.items():
        assessment = profile.get(feature)
        if assessment and assessment["observed"] >= 0.5 and claim.format(assessment["value"]) in deviation:
            found.append(f"deviation: calls {assessment['value']!r} new though it was counted before")
    return found


def detect(path: Path, defaults: SourceContext, learning_days: int) -> list[dict[str, Any]]:
    detector = build_detector(None, MemoryStateStore(), learning_days=learning_days, baseline_batch=BASELINE_BATCH)
    for record in decode_path(path, defaults=defaults):
        detector.process(record)
    return [finding.to_dict() for finding in detector.findings()]


def assert_readable(findings: list[dict[str, Any]]) -> None:
    assert any(f["detector"] == "anomaly" for f in findings), "no anomaly finding to read"
    rejected = {f"{f['rule_id']} {f['id']}": issues for f in findings if (issues := problems(f))}
    assert not rejected, json.dumps(dict(list(rejected.items())[:10]), indent=1)


@pytest.mark.skipif(not DATASETS.is_dir(), reason="../shared/datasets is not beside the checkout")
def test_every_finding_on_the_dev_set_reads_plainly() -> None:
    root = DATASETS / "dev-scenarios"
    labels = json.loads((root / "labels.json").read_text())
    context = SourceContext(cluster=labels["cluster"], account=labels["account"], region=labels["region"])
    assert_readable(detect(root / "audit.jsonl.gz", context, learning_days=7))


def test_every_finding_on_a_simulated_cluster_reads_plainly(tmp_path: Path) -> None:
    """Five days of seed 7 with benign drift, read from its CloudWatch Logs payloads: the cluster's name comes from
    the log group, so no finding may fall back to 'unknown'."""
    from eksight.tools.simulator import Config, generate

    out = tmp_path / "sim"
    generate(Config(out=out, days=5, learning_days=3, seed=7, drift=True, scale=0.5))
    findings = detect(out / "cwl", SourceContext(), learning_days=3)
    cluster = json.loads((out / "labels.json").read_text())["cluster"]
    assert {f["cluster"] for f in findings} == {cluster}
    assert_readable(findings)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("class_namespace exec@inventory UNSEEN (0 of 9 before)", "internal identifier"),
        ("cluster_list@(cluster) UNSEEN (0 of 0 before)", "internal identifier"),
        ("rules[1] apiGroups=[''] resources=['secrets']", "Python repr"),
        ("owner None", "Python repr"),
        ("ServiceAccount kube-system/(unnamed) created", "internal identifier"),
        ("its first exec; first_use_of_sensitive_action", "snake_case name"),
        ("it never used network 10.0.0.0/24 before: 3 of its 410 requests", "prior count"),
    ],
)
def test_the_checks_reject_what_analysts_complained_about(text: str, expected: str) -> None:
    finding = {
        "title": "t",
        "description": f"{text}. At 2025-03-03 10:00:00 UTC in cluster c.",
        "remediation": "",
        "cluster": "c",
        "detector": "rule",
        "details": {},
        "resources": [],
    }
    assert any(expected in problem for problem in problems(finding)), problems(finding)


def test_the_checks_accept_plain_text() -> None:
    finding = {
        "title": "Unusual secrets access by alice@example.com",
        "description": "alice@example.com read secret shop/db in cluster c from 203.0.113.9 with curl 8.4, at "
        "2025-03-03 10:00:00 UTC (Monday). Unusual, compared with its 410 requests over 14 days: it never worked "
        "in namespace shop; requests with curl 8.4 are rare: about 3 of its 410 requests.",
        "remediation": "Ask alice@example.com whether they needed these secrets.",
        "cluster": "c",
        "detector": "rule",
        "details": {},
        "resources": [],
    }
    assert problems(finding) == []
