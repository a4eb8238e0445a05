"""Config validation: every rule rejects what it should, names the field and says how to fix it."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from eksight import config
from eksight.config.filter_pattern import DEFAULT_FILTER_PATTERN

ROOT = Path(__file__).resolve().parents[2]
KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
MINIMAL: dict[str, Any] = {"regions": {"us-east-1": {"clusters": ["prod"]}}}


def problems(raw: Any) -> list[tuple[str, str]]:
    with pytest.raises(config.ConfigError) as caught:
        config.parse(raw)
    return caught.value.problems


def with_region(**region: Any) -> dict[str, Any]:
    return {"regions": {"us-east-1": {"clusters": ["prod"], **region}}}


def test_minimal_config_gets_documented_defaults() -> None:
    deployment = config.parse(MINIMAL)
    (region,) = deployment.regions
    assert (region.region, region.partition, region.clusters) == ("us-east-1", "aws", ("prod",))
    assert region.stack_name == "eksight-ingestion-us-east-1"
    assert region.options.archive.expiration_days == 365
    assert region.options.enable_audit_logging is False
    assert region.options.encryption.existing_kms_key_arn is None
    assert region.filter_pattern == DEFAULT_FILTER_PATTERN


@pytest.mark.parametrize(
    ("raw", "path", "words"),
    [
        ({"regions": {"us-east-9": {"clusters": ["a"]}}}, "regions.us-east-9", ["unknown AWS region", "us-east-1"]),
        ({"regions": {"eu-wst-1": {"clusters": ["a"]}}}, "regions.eu-wst-1", ["did you mean", "eu-west-1"]),
        ({"regions": {}}, "regions", ["must not be empty"]),
        ({}, "regions", ["required"]),
        ({"regions": {"us-east-1": {"clusters": []}}}, "regions.us-east-1.clusters", ["must not be empty"]),
        (
            {"regions": {"us-east-1": {"clusters": ["a", "b", "a"]}}},
            "regions.us-east-1.clusters",
            ["duplicate cluster a", "once"],
        ),
        (
            {"regions": {"us-east-1": {"clusters": ["-bad"]}}},
            "regions.us-east-1.clusters",
            ["not a valid EKS cluster name"],
        ),
        (
            {"regions": {"us-east-1": {"clusters": ["x" * 101]}}},
            "regions.us-east-1.clusters",
            ["not a valid EKS cluster name"],
        ),
        (
            {"regions": {"us-east-1": {"clusters": [f"c{i}" for i in range(61)]}}},
            "regions.us-east-1.clusters",
            ["too many", "split"],
        ),
        (with_region(archive={"expiration_days": 0}), "regions.us-east-1.archive.expiration_days", ["≥ 1"]),
        (
            with_region(archive={"expiration_days": 60}),
            "regions.us-east-1.archive",
            ["transition_days (90) must be smaller than expiration_days (60)"],
        ),
        (
            with_region(archive={"transition_storage_class": "TAPE"}),
            "regions.us-east-1.archive.transition_storage_class",
            ["GLACIER_IR"],
        ),
        (
            with_region(archive={"existing_bucket_arn": "arn:aws:s3:us-east-1:111122223333:bucket"}),
            "regions.us-east-1.archive.existing_bucket_arn",
            ["malformed S3 bucket ARN", "arn:aws:s3:::"],
        ),
        (
            with_region(archive={"existing_bucket_arn": "arn:aws:s3:::logs", "versioning": False}),
            "regions.us-east-1.archive",
            ["versioning cannot be applied to an existing bucket"],
        ),
        (
            with_region(encryption={"existing_kms_key_arn": "alias/my-key"}),
            "regions.us-east-1.encryption.existing_kms_key_arn",
            ["malformed KMS key ARN", "not an alias"],
        ),
        (
            with_region(encryption={"existing_kms_key_arn": KEY_ARN.replace("us-east-1", "eu-west-1")}),
            "regions.us-east-1.encryption.existing_kms_key_arn",
            ["key is in eu-west-1", "regional"],
        ),
        (
            with_region(encryption={"key_deletion_window_days": 3}),
            "regions.us-east-1.encryption.key_deletion_window_days",
            ["≥ 7"],
        ),
        (
            with_region(encryption={"key_deletion_window_days": 31}),
            "regions.us-east-1.encryption.key_deletion_window_days",
            ["≤ 30"],
        ),
        (
            with_region(delivery={"existing_role_arn": "arn:aws:iam::1234:role/x"}),
            "regions.us-east-1.delivery.existing_role_arn",
            ["malformed IAM role ARN"],
        ),
        (
            with_region(subscription={"existing_role_arn": "arn:aws:iam::111122223333:user/bob"}),
            "regions.us-east-1.subscription.existing_role_arn",
            ["malformed IAM role ARN"],
        ),
        (
            with_region(delivery={"buffering_interval_seconds": 901}),
            "regions.us-east-1.delivery.buffering_interval_seconds",
            ["≤ 900"],
        ),
        (with_region(delivery={"buffering_size_mib": 0}), "regions.us-east-1.delivery.buffering_size_mib", ["≥ 1"]),
        (
            with_region(delivery={"buffering_size_mib": "16"}),
            "regions.us-east-1.delivery.buffering_size_mib",
            ["whole number"],
        ),
        (
            with_region(delivery={"error_log_retention_days": 31}),
            "regions.us-east-1.delivery.error_log_retention_days",
            ["not a CloudWatch Logs retention period", "next: 60"],
        ),
        (
            with_region(subscription={"filter_pattern": '{ $.stage = "ResponseComplete" '}),
            "regions.us-east-1.subscription.filter_pattern",
            ["Fix: correct the pattern"],
        ),
        (
            with_region(subscription={"filter_pattern": "x" * 1025}),
            "regions.us-east-1.subscription.filter_pattern",
            ["1024"],
        ),
        (with_region(enable_audit_logging="yes"), "regions.us-east-1.enable_audit_logging", ["true or false"]),
        (with_region(archve={}), "regions.us-east-1.archve", ["unknown field", "Did you mean 'archive'"]),
        (
            with_region(archive={"expiration": 3}),
            "regions.us-east-1.archive.expiration",
            ["unknown field", "'expiration_days'"],
        ),
        (
            {**MINIMAL, "defaults": {"delivery": {"bufering_size_mib": 3}}},
            "defaults.delivery.bufering_size_mib",
            ["unknown field", "'buffering_size_mib'"],
        ),
        ({**MINIMAL, "name_prefix": "EKSight"}, "name_prefix", ["not a valid name prefix"]),
        ({**MINIMAL, "name_prefix": "a--b"}, "name_prefix", ["single dashes"]),
        ({**MINIMAL, "name_prefix": "x" * 21}, "name_prefix", ["1-20"]),
        ({**MINIMAL, "account": "12345"}, "account", ["12-digit"]),
        ({**MINIMAL, "tags": {"aws:owner": "me"}}, "tags", ["reserved 'aws:' prefix"]),
        ({**MINIMAL, "tags": {"k" * 129: "v"}}, "tags", ["1-128"]),
        ({**MINIMAL, "tags": {f"k{i}": "v" for i in range(41)}}, "tags", ["at most 40"]),
        ({**MINIMAL, "tags": {"team": 7}}, "tags.team", ["must be a string"]),
        (
            {"regions": {"us-east-1": {"clusters": ["a"]}, "cn-north-1": {"clusters": ["b"]}}},
            "regions",
            ["span partitions", "one config file per partition"],
        ),
        ({**MINIMAL, "regions": []}, "regions", ["must be an object"]),
        ([], "(root)", ["must be a JSON object"]),
    ],
)
def test_invalid_configs_name_the_field_and_the_fix(raw: Any, path: str, words: list[str]) -> None:
    found = problems(raw)
    matching = [message for field, message in found if field == path]
    assert matching, f"no problem reported at {path}; got {found}"
    message = " ".join(matching)
    for word in words:
        assert word.lower() in message.lower(), f"{word!r} not in {message!r}"
    assert all("Fix:" in message for _, message in found), found


def test_account_mismatch_of_byo_key_and_roles_is_reported() -> None:
    raw = {
        "account": "999999999999",
        **with_region(
            encryption={"existing_kms_key_arn": KEY_ARN},
            delivery={"existing_role_arn": "arn:aws:iam::111122223333:role/firehose"},
            subscription={"existing_role_arn": "arn:aws:iam::111122223333:role/logs"},
        ),
    }
    paths = {field for field, _ in problems(raw)}
    assert paths == {
        "regions.us-east-1.encryption.existing_kms_key_arn",
        "regions.us-east-1.delivery.existing_role_arn",
        "regions.us-east-1.subscription.existing_role_arn",
    }


def test_every_problem_is_reported_at_once() -> None:
    raw = {"name_prefix": "Bad", "regions": {"us-east-1": {"clusters": [], "archive": {"expiration_days": 0}}}}
    assert len(problems(raw)) == 3


# Every pattern-validated field: the path a problem is reported at, a valid value, a config holding a value there.
PATTERN_FIELDS: list[tuple[str, str, Callable[[str], dict[str, Any]]]] = [
    ("name_prefix", "team-a", lambda v: {**MINIMAL, "name_prefix": v}),
    ("account", "111122223333", lambda v: {**MINIMAL, "account": v}),
    ("regions.us-east-1.clusters", "prod", lambda v: {"regions": {"us-east-1": {"clusters": [v]}}}),
    (
        "regions.us-east-1.archive.existing_bucket_arn",
        "arn:aws:s3:::my-logs",
        lambda v: with_region(archive={"existing_bucket_arn": v}),
    ),
    (
        "regions.us-east-1.encryption.existing_kms_key_arn",
        KEY_ARN,
        lambda v: with_region(encryption={"existing_kms_key_arn": v}),
    ),
    (
        "regions.us-east-1.delivery.existing_role_arn",
        "arn:aws:iam::111122223333:role/firehose",
        lambda v: with_region(delivery={"existing_role_arn": v}),
    ),
    (
        "regions.us-east-1.subscription.existing_role_arn",
        "arn:aws:iam::111122223333:role/service/logs",
        lambda v: with_region(subscription={"existing_role_arn": v}),
    ),
    (
        "regions.us-east-1.findings.notifications.email",
        "security@example.com",
        lambda v: with_region(findings={"notifications": {"email": [v]}}),
    ),
    (
        "regions.us-east-1.findings.notifications.sns_topic_arn",
        "arn:aws:sns:us-east-1:111122223333:alerts",
        lambda v: with_region(findings={"notifications": {"sns_topic_arn": v}}),
    ),
    (
        "regions.us-east-1.findings.central_bus_arn",
        "arn:aws:events:us-east-1:444455556666:event-bus/security",
        lambda v: with_region(findings={"central_bus_arn": v}),
    ),
]


@pytest.mark.parametrize(("path", "valid", "build"), PATTERN_FIELDS, ids=[path for path, _, _ in PATTERN_FIELDS])
@pytest.mark.parametrize("padding", ["\n", " ", "\t", "\r\n", "\n\n"], ids=repr)
def test_pattern_validated_fields_reject_trailing_whitespace(
    path: str, valid: str, build: Callable[[str], dict[str, Any]], padding: str
) -> None:
    config.parse(build(valid))  # the value itself is fine
    found = problems(build(valid + padding))
    assert [field for field, _ in found] == [path], found


@pytest.mark.parametrize(("path", "valid", "build"), PATTERN_FIELDS, ids=[path for path, _, _ in PATTERN_FIELDS])
def test_pattern_validated_fields_reject_leading_whitespace(
    path: str, valid: str, build: Callable[[str], dict[str, Any]]
) -> None:
    assert [field for field, _ in problems(build("\n" + valid))] == [path]


def test_account_id_digits_are_ascii() -> None:
    arabic_indic = "١١١١٢٢٢٢٣٣٣٣"  # str.isdigit() and Unicode \d accept these; AWS does not
    assert [field for field, _ in problems({**MINIMAL, "account": arabic_indic})] == ["account"]


# --- a problem in `defaults` is reported once, at defaults, not again under every region -----------------

TWO_REGIONS: dict[str, Any] = {"regions": {"us-east-1": {"clusters": ["a"]}, "eu-west-1": {"clusters": ["b"]}}}


@pytest.mark.parametrize(
    ("defaults", "path"),
    [
        ({"detector": {"memory_mb": 1}}, "defaults.detector.memory_mb"),
        ({"delivery": {"existing_role_arn": "arn:aws:iam::1:role/x"}}, "defaults.delivery.existing_role_arn"),
        ({"delivery": {"bufering_size_mib": 3}}, "defaults.delivery.bufering_size_mib"),
        ({"archive": {"transition_days": 400}}, "defaults.archive"),  # a model-level (cross-field) problem
        (
            {"findings": {"notifications": {"email": ["a@example.com", "a@example.com"]}}},
            "defaults.findings.notifications.email",
        ),
        ({"enable_audit_logging": "yes"}, "defaults.enable_audit_logging"),
    ],
)
def test_a_bad_default_is_reported_once(defaults: dict[str, Any], path: str) -> None:
    raw = {**TWO_REGIONS, "defaults": defaults}
    raw["regions"] = {**raw["regions"], "eu-west-1": {"clusters": ["b"], "archive": {"versioning": False}}}
    assert [field for field, _ in problems(raw)] == [path]


def test_a_region_that_sets_the_same_bad_value_itself_is_reported_too() -> None:
    raw = {
        **TWO_REGIONS,
        "defaults": {"detector": {"memory_mb": 1}},
        "regions": {"us-east-1": {"clusters": ["a"]}, "eu-west-1": {"clusters": ["b"], "detector": {"memory_mb": 1}}},
    }
    assert [field for field, _ in problems(raw)] == [
        "defaults.detector.memory_mb",
        "regions.eu-west-1.detector.memory_mb",
    ]


def test_a_problem_that_only_the_merge_creates_is_reported_at_the_region() -> None:
    raw = {
        "defaults": {"archive": {"transition_days": 200}},  # fine with the default expiration (365)
        "regions": {
            "us-east-1": {"clusters": ["a"]},
            "eu-west-1": {"clusters": ["b"], "archive": {"expiration_days": 100}},
        },
    }
    found = problems(raw)
    assert [field for field, _ in found] == ["regions.eu-west-1.archive"]
    assert "transition_days (200) must be smaller than expiration_days (100)" in found[0][1]


def test_an_inherited_role_of_another_account_is_reported_once_at_defaults() -> None:
    role = "arn:aws:iam::111122223333:role/firehose"
    raw = {
        **copy.deepcopy(TWO_REGIONS),
        "account": "999999999999",
        "defaults": {"delivery": {"existing_role_arn": role}},
    }
    assert problems(raw) == [
        (
            "defaults.delivery.existing_role_arn",
            "role belongs to account 111122223333, not 999999999999. Fix: use a role of the target account",
        )
    ]
    # once only us-east-1 inherits it, the problem is that region's (as a key in another region would be)
    raw["regions"]["eu-west-1"] = {
        "clusters": ["b"],
        "delivery": {"existing_role_arn": role.replace("firehose", "own")},
    }
    assert [field for field, _ in problems(raw)] == [
        "regions.us-east-1.delivery.existing_role_arn",
        "regions.eu-west-1.delivery.existing_role_arn",
    ]


def test_an_inherited_central_bus_in_an_unknown_region_is_reported_once_at_defaults() -> None:
    bus = "arn:aws:events:xx-nowhere-1:111122223333:event-bus/security"
    raw = {**copy.deepcopy(TWO_REGIONS), "defaults": {"findings": {"central_bus_arn": bus}}}
    found = problems(raw)
    assert [field for field, _ in found] == ["defaults.findings.central_bus_arn"]
    assert "unknown region 'xx-nowhere-1' in the bus ARN" in found[0][1]


def test_a_key_from_defaults_is_reported_in_each_region_it_does_not_belong_to() -> None:
    raw = {
        "defaults": {"encryption": {"existing_kms_key_arn": KEY_ARN}},  # a us-east-1 key
        "regions": {
            "us-east-1": {"clusters": ["a"]},
            "eu-west-1": {"clusters": ["b"]},
            "eu-central-1": {"clusters": ["c"]},
        },
    }
    assert [field for field, _ in problems(raw)] == [
        "regions.eu-west-1.encryption.existing_kms_key_arn",
        "regions.eu-central-1.encryption.existing_kms_key_arn",
    ]


def test_defaults_merge_under_each_region_and_the_region_wins() -> None:
    raw = {
        "defaults": {
            "archive": {"expiration_days": 400, "transition_days": 30},
            "delivery": {"buffering_interval_seconds": 120},
        },
        "regions": {
            "us-east-1": {"clusters": ["a"], "delivery": {"buffering_interval_seconds": 30}},
            "eu-west-1": {"clusters": ["b"]},
        },
    }
    by_region = {r.region: r.options for r in config.parse(raw).regions}
    assert by_region["us-east-1"].delivery.buffering_interval_seconds == 30
    assert by_region["eu-west-1"].delivery.buffering_interval_seconds == 120
    assert by_region["us-east-1"].archive.expiration_days == by_region["eu-west-1"].archive.expiration_days == 400
    assert by_region["eu-west-1"].delivery.buffering_size_mib == 16


def test_default_bucket_settings_do_not_leak_into_a_region_that_brings_its_bucket() -> None:
    raw = {
        "defaults": {"archive": {"expiration_days": 400}},
        "regions": {"us-east-1": {"clusters": ["a"], "archive": {"existing_bucket_arn": "arn:aws:s3:::mine"}}},
    }
    (region,) = config.parse(raw).regions
    assert region.options.archive.existing_bucket_arn == "arn:aws:s3:::mine"


def test_gov_and_china_regions_resolve_their_partition() -> None:
    assert config.parse({"regions": {"us-gov-west-1": {"clusters": ["a"]}}}).regions[0].partition == "aws-us-gov"
    assert config.parse({"regions": {"cn-north-1": {"clusters": ["a"]}}}).regions[0].partition == "aws-cn"


def test_load_reports_missing_file_and_broken_json(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match=r"not found\. Fix: copy examples/minimal\.json"):
        config.load(tmp_path / "nope.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"regions": {"us-east-1": {"clusters": ["a"],}}}')
    with pytest.raises(config.ConfigError, match=r"line 1 column \d+.*invalid JSON"):
        config.load(broken)


def test_error_text_lists_every_problem_with_the_file_name() -> None:
    with pytest.raises(config.ConfigError) as caught:
        config.parse({"regions": {"us-east-9": {"clusters": []}}}, source="team.json")
    text = str(caught.value)
    assert text.startswith("team.json: 2 problems")
    assert "  - regions.us-east-9.clusters:" in text


# --- the published schema ------------------------------------------------------------------------------

SCHEMA_PATH = ROOT / "schema" / "eksight.config.schema.json"


def test_published_schema_and_reference_are_generated_from_the_models() -> None:
    assert json.loads(SCHEMA_PATH.read_text()) == config.json_schema(), "run `make schema`"
    assert (ROOT / "docs" / "configuration.md").read_text() == config.markdown_reference(), "run `make schema`"


@pytest.mark.parametrize(
    "example", [*sorted((ROOT / "examples").glob("*.json")), ROOT / "eksight.config.json"], ids=lambda p: p.name
)
def test_examples_pass_both_the_schema_and_the_validator(example: Path) -> None:
    raw = json.loads(example.read_text())
    jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text())).validate(raw)
    assert config.load(example).regions


def test_schema_rejects_what_the_models_reject_structurally() -> None:
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))
    bad = copy.deepcopy(MINIMAL)
    bad["regions"]["us-east-1"]["archive"] = {"expiration_days": 0, "colour": "blue"}
    messages = {error.message for error in validator.iter_errors(bad)}
    assert any("colour" in m for m in messages) and any("minimum of 1" in m for m in messages)
