"""Fixtures of the infrastructure tests (each config is synthesized once per worker)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infrastructure.shared import OPTIONS_CONFIG, Synth


@pytest.fixture(scope="session")
def options_templates(synth: Synth, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    path = tmp_path_factory.mktemp("cfg") / "options.json"
    path.write_text(json.dumps(OPTIONS_CONFIG))
    return synth(path)
