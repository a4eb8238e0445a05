"""Finding text helpers: clipped quotes end at a word, not inside a name."""

from __future__ import annotations

from eksight.core.rules.common import clip


def test_a_long_text_is_clipped_at_the_last_word_boundary_with_an_ellipsis() -> None:
    refusal = 'deployments "api" is forbidden: User "arn:aws-test:sts::1:assumed-role/Dev/carla.okafor@example.dev"'
    clipped = clip(refusal, 60)
    assert len(clipped) <= 60 and clipped.endswith("…")
    assert clipped == 'deployments "api" is forbidden: User…'  # not "…carla.okafor@exam…"


def test_a_text_without_a_nearby_space_is_cut_at_the_limit() -> None:
    token = "x" * 300
    assert clip(token, 50) == "x" * 49 + "…"


def test_short_text_is_only_put_on_one_line() -> None:
    assert clip("two\n  lines", 50) == "two lines"
