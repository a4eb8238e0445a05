"""The detector's msgspec reading of the `detection` options (eksight.core.detection_runtime) against their one
definition, the pydantic models of eksight.core.detection_options: same fields, defaults, required fields and
constraints, and the same verdict on the same documents (except the rule-id check, which the runtime leaves to
the stack's validation)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import msgspec
import pytest
from annotated_types import Ge, Le, MaxLen, MinLen
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticUndefined

from eksight.core.detection_options import AllowSpec, DetectionOptions, NetworksObject, Suppression
from eksight.core.detection_runtime import (
    RuntimeAllowSpec,
    RuntimeDetectionOptions,
    RuntimeNetworksObject,
    RuntimeSuppression,
    decode_detection,
    with_changes,
)
from stacks.constructs.detector_function import detection_config_json

PAIRS = [
    (AllowSpec, RuntimeAllowSpec),
    (Suppression, RuntimeSuppression),
    (NetworksObject, RuntimeNetworksObject),
    (DetectionOptions, RuntimeDetectionOptions),
]


def pydantic_field(model: type[BaseModel], name: str) -> dict[str, Any]:
    field = model.model_fields[name]
    constraints: dict[str, Any] = {}
    for item in field.metadata:
        for kind, key in ((Ge, "ge"), (Le, "le"), (MaxLen, "max_length"), (MinLen, "min_length")):
            if isinstance(item, kind):
                constraints[key] = getattr(item, key)
        if getattr(item, "pattern", None) is not None:
            constraints["pattern"] = item.pattern
    required = field.default is PydanticUndefined and field.default_factory is None
    default = None if required else field.get_default(call_default_factory=True)
    return {"required": required, "default": default, **constraints}


def runtime_field(struct: type[msgspec.Struct], field: msgspec.inspect.Field) -> dict[str, Any]:
    constraints = {
        key: getattr(field.type, key)
        for key in ("ge", "le", "max_length", "min_length", "pattern")
        if getattr(field.type, key, None) is not None
    }
    default = None if field.required else field.default
    if default is msgspec.NODEFAULT:
        default = field.default_factory()
    return {"required": field.required, "default": default, **constraints}


def comparable(default: Any) -> Any:
    """A default as plain data (a nested model or struct by its fields)."""
    if isinstance(default, BaseModel):
        return default.model_dump()
    if isinstance(default, msgspec.Struct):
        return msgspec.structs.asdict(default)
    return default


@pytest.mark.parametrize(("model", "struct"), PAIRS, ids=[model.__name__ for model, _ in PAIRS])
def test_the_structs_have_the_models_fields_defaults_and_constraints(
    model: type[BaseModel], struct: type[msgspec.Struct]
) -> None:
    fields = {field.name: field for field in msgspec.inspect.type_info(struct).fields}  # type: ignore[attr-defined]
    assert set(fields) == set(model.model_fields)
    for name in model.model_fields:
        expected, got = pydantic_field(model, name), runtime_field(struct, fields[name])
        expected["default"], got["default"] = comparable(expected["default"]), comparable(got["default"])
        assert got == expected, name
    assert struct.__struct_config__.forbid_unknown_fields and model.model_config["extra"] == "forbid"


SUPPRESSION = {"rule": "EKS-102", "principal": "sa:ci/deployer", "reason": "the CI deploys", "expires": "2027-01-01"}
ACCEPTED = [
    {},
    {"allow": {"principals": ["sa:ops/*"]}, "learning_days": 0, "rule_allow": {"EKS-100": {"namespaces": ["x"]}}},
    {"threat_networks": ["203.0.113.7", "2001:db8::/32"], "trusted_networks": ["198.51.100.0/24"]},
    {"networks_object": {"bucket": "intel-bucket", "key": "lists/networks.json"}},
    {"suppressions": [SUPPRESSION, {"rule": "EKS-301", "all_principals": True, "reason": "noise"}]},
]
REJECTED = [
    {"learning_days": 91},
    {"learning_days": "7"},
    {"learning_days": -1},
    {"allow": {"principals": ["a"], "groups": ["b"]}},
    {"threat_networks": ["203.0.113.7", "not-a-network"]},
    {"trusted_networks": [f"10.0.{i // 256}.{i % 256}" for i in range(10_001)]},
    {"networks_object": {"bucket": "Intel", "key": "lists/networks.json"}},
    {"networks_object": {"bucket": "intel-bucket", "key": "lists/*.json"}},
    {"suppressions": [{**SUPPRESSION, "reason": " "}]},
    {"suppressions": [{"rule": "EKS-102", "reason": "everyone"}]},
    {"suppressions": [{"rule": "EKS-102", "principal": "*", "reason": "a star narrows nothing"}]},
    {"suppressions": [{"rule": "EKS-102", "principal": "a", "all_principals": True, "reason": "both"}]},
    {"suppressions": [{"rule": "EKS-102", "principal": "a"}]},
    {"suppressions": [SUPPRESSION, {**SUPPRESSION, "reason": "again"}]},
    {"unknown": 1},
]


@pytest.mark.parametrize("document", ACCEPTED)
def test_what_the_models_accept_the_structs_read_to_the_same_options(document: dict[str, Any]) -> None:
    model = DetectionOptions.model_validate_json(json.dumps(document))
    runtime = decode_detection(detection_config_json(model).encode())  # what the stack ships
    assert msgspec.to_builtins(runtime) == model.model_dump(mode="json")
    assert decode_detection(json.dumps(document).encode()) == runtime


@pytest.mark.parametrize("document", REJECTED)
def test_what_the_models_reject_the_structs_reject(document: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        DetectionOptions.model_validate_json(json.dumps(document))
    with pytest.raises(msgspec.ValidationError):
        decode_detection(json.dumps(document).encode())


def test_rule_ids_are_left_to_the_stacks_validation() -> None:
    document: dict[str, Any] = {"rule_allow": {"EKS-999": {}}}
    with pytest.raises(ValidationError, match="unknown rule id"):
        DetectionOptions.model_validate(document)
    assert "EKS-999" in decode_detection(json.dumps(document).encode()).rule_allow


def test_a_change_is_checked_again() -> None:
    options = decode_detection(json.dumps({"suppressions": [SUPPRESSION]}).encode())
    assert with_changes(options, learning_days=30).learning_days == 30
    with pytest.raises(msgspec.ValidationError, match="<= 90"):
        with_changes(options, learning_days=91)
    with pytest.raises(msgspec.ValidationError, match="not an IP address"):
        with_changes(options, threat_networks=["203.0.113.300"])


def test_suppressions_say_the_same_in_both_forms() -> None:
    model = Suppression.model_validate(SUPPRESSION)
    runtime = decode_detection(json.dumps({"suppressions": [SUPPRESSION]}).encode()).suppressions[0]
    assert (
        (runtime.scope, runtime.label)
        == (model.scope, model.label)
        == (
            ("EKS-102", "sa:ci/deployer", ""),
            "EKS-102 principal=sa:ci/deployer",
        )
    )
    for day in (date(2026, 12, 31), date(2027, 1, 1)):
        assert runtime.expired(day) == model.expired(day) == (day >= date(2027, 1, 1))
