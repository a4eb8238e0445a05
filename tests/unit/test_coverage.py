"""Catalog coverage and the generated detections page."""

from __future__ import annotations

from pathlib import Path

from eksight.core.rules import all_rules
from eksight.core.rules.coverage import CATALOG, NOT_COVERED, covered_ideas, markdown

ROOT = Path(__file__).resolve().parents[2]


def test_at_least_40_catalog_ideas_are_covered_and_the_rest_say_why() -> None:
    covered = covered_ideas()
    assert len(covered) >= 40
    assert set(CATALOG) - covered == set(NOT_COVERED), "every uncovered idea needs a reason, and only those"


def test_every_rule_is_complete() -> None:
    for rule in all_rules():
        assert rule.id and rule.title and rule.description and rule.remediation, rule.id
        assert ":Kubernetes/" in rule.type, rule.id
        assert rule.mitre and all(m.startswith("T") for m in rule.mitre), rule.id
        assert rule.catalog and set(rule.catalog) <= set(CATALOG), rule.id


def test_detections_page_is_generated_from_the_rules() -> None:
    assert (ROOT / "docs" / "detections.md").read_text() == markdown(), "run `make docs`"
