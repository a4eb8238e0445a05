"""`eksight generate --noninteractive`: flags only; exact configs, errors that name the flag, nothing written
on error, no blank or default-by-accident values, --json, CloudShell next steps. Plus the pure pieces behind
it: answers → config, the answer cache, the cdk diff summary."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from eksight.config import ConfigError, load
from eksight.tools.cli import main
from eksight.tools.setup import cache
from eksight.tools.setup.answers import (
    Answers,
    RegionAnswers,
    answers_from_config,
    answers_to_config,
    flag_for,
    validate_answers,
)
from eksight.tools.setup.planning import next_steps, project_root, summarize_diff
from tests.setup.pty_session import credentials, moto_server

ROOT = Path(__file__).resolve().parents[2]
KEY_EU = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
TOPIC_US = "arn:aws:sns:us-east-1:111122223333:eks-alerts"
DATA = Path(__file__).parent / "data"


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No credentials (every lookup fails at once), a private answer cache, tmp_path as the working dir."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_EXECUTION_ENV"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def generate(*args: str) -> Any:
    return CliRunner().invoke(main, ["generate", "--noninteractive", *args], catch_exceptions=False)


def _walk(value: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [(path, value)] + [item for k, v in value.items() for item in _walk(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [(path, value)] + [item for i, v in enumerate(value) for item in _walk(v, f"{path}[{i}]")]
    return [(path, value)]


# ---- the happy path -------------------------------------------------------------------------------------------


def test_every_flag_lands_in_the_config_and_nothing_else(offline: Path) -> None:
    result = generate(
        "--region-clusters",
        "us-east-1=prod-api,staging",
        "--region-clusters",
        "eu-west-1=eu-prod",
        "--output",
        "out.json",
        "--account",
        "111122223333",
        "--name-prefix",
        "secops",
        "--bucket-arn",
        "us-east-1=arn:aws:s3:::acme-eks-audit",
        "--kms-key-arn",
        KEY_EU,
        "--firehose-role-arn",
        "arn:aws:iam::111122223333:role/fh",
        "--cloudwatch-role-arn",
        "arn:aws:iam::111122223333:role/cwl",
        "--filter-pattern",
        '{ $.kind = "Event" }',
        "--expiration-days",
        "400",
        "--transition-days",
        "30",
        "--transition-storage-class",
        "deep_archive",
        "--no-access-logging",
        "--key-deletion-window-days",
        "14",
        "--buffering-interval",
        "30",
        "--enable-audit-logging",
        "--learning-days",
        "14",
        "--securityhub-min-severity",
        "critical",
        "--sns-topic-arn",
        TOPIC_US,
        "--notify-min-severity",
        "MEDIUM",
        "--central-bus-arn",
        "arn:aws:events:us-east-1:999988887777:event-bus/security",
        "--tag",
        "team=platform",
        "--tag",
        "cost-center=sec-042",
        # given, but equal to the defaults: not written
        "--versioning",
        "--securityhub",
        "--buffering-size",
        "16",
    )
    assert result.exit_code == 0, result.output
    written = json.loads((offline / "out.json").read_text())
    assert written == {
        "$schema": os.path.relpath(ROOT / "schema" / "eksight.config.schema.json", offline),
        "name_prefix": "secops",
        "account": "111122223333",
        "tags": {"team": "platform", "cost-center": "sec-042"},
        "defaults": {
            "archive": {
                "expiration_days": 400,
                "transition_days": 30,
                "transition_storage_class": "DEEP_ARCHIVE",
                "access_logging": False,
            },
            "encryption": {"key_deletion_window_days": 14},
            "delivery": {"existing_role_arn": "arn:aws:iam::111122223333:role/fh", "buffering_interval_seconds": 30},
            "subscription": {
                "existing_role_arn": "arn:aws:iam::111122223333:role/cwl",
                "filter_pattern": '{ $.kind = "Event" }',
            },
            "enable_audit_logging": True,
            "findings": {
                "securityhub": {"min_severity": "CRITICAL"},
                "notifications": {"min_severity": "MEDIUM"},
                "central_bus_arn": "arn:aws:events:us-east-1:999988887777:event-bus/security",
            },
        },
        "detection": {"learning_days": 14},
        "regions": {
            "us-east-1": {
                "clusters": ["prod-api", "staging"],
                "archive": {"existing_bucket_arn": "arn:aws:s3:::acme-eks-audit"},
                "findings": {"notifications": {"sns_topic_arn": TOPIC_US}},
            },
            "eu-west-1": {"clusters": ["eu-prod"], "encryption": {"existing_kms_key_arn": KEY_EU}},
        },
    }
    deployment = load(offline / "out.json")
    us, eu = deployment.regions
    assert us.options.archive.existing_bucket_arn and not us.options.archive.model_fields_set - {"existing_bucket_arn"}
    assert eu.options.archive.transition_storage_class == "DEEP_ARCHIVE"  # the new bucket's settings apply to eu
    assert not [(path, v) for path, v in _walk(written) if v in ("", [], {})], "blank values written"


def test_minimal_flags_write_only_the_clusters(offline: Path) -> None:
    assert generate("--region-clusters", "us-east-1=prod").exit_code == 0
    assert json.loads((offline / "eksight.config.json").read_text()) == {
        "$schema": os.path.relpath(ROOT / "schema" / "eksight.config.schema.json", offline),
        "regions": {"us-east-1": {"clusters": ["prod"]}},
    }
    assert not (offline / "xdg").exists(), "--noninteractive must not leave an answer cache"


def test_inside_the_checkout_the_schema_is_a_relative_path(offline: Path) -> None:
    target = Path(__file__).parent / f".tmp-{os.getpid()}" / "c.json"
    target.parent.mkdir(parents=True)
    try:
        assert generate("--region-clusters", "us-east-1=prod", "--output", str(target)).exit_code == 0
        assert json.loads(target.read_text())["$schema"] == "../../../schema/eksight.config.schema.json"
    finally:
        target.unlink(missing_ok=True)
        target.parent.rmdir()  # tests/setup/.tmp-PID: three levels below the checkout


# ---- errors ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "missing --region-clusters REGION=cluster1,cluster2"),
        (
            (
                "--region-clusters",
                "us-east-1=a",
                "--region-clusters",
                "eu-west-1=b",
                "--bucket-arn",
                "arn:aws:s3:::abc-1",
            ),
            "--bucket-arn: 2 regions are configured: say which one, --bucket-arn REGION=arn:aws:s3:::abc-1",
        ),
        (
            ("--region-clusters", "us-east-1=a", "--kms-key-arn", KEY_EU),
            "--kms-key-arn: eu-west-1 is not one of the configured regions (us-east-1)",
        ),
    ],
)
def test_missing_or_unplaceable_flags_are_named(offline: Path, args: tuple[str, ...], message: str) -> None:
    result = generate(*args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert not (offline / "eksight.config.json").exists()


def test_an_existing_file_needs_overwrite(offline: Path) -> None:
    (offline / "eksight.config.json").write_text("{}")
    result = generate("--region-clusters", "us-east-1=prod")
    assert result.exit_code == 1
    assert "eksight.config.json exists: pass --overwrite" in result.stderr
    assert (offline / "eksight.config.json").read_text() == "{}"
    assert generate("--region-clusters", "us-east-1=prod", "--overwrite").exit_code == 0
    assert load(offline / "eksight.config.json").regions[0].clusters == ("prod",)


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ("--region-clusters", "us-est-1=prod"),
            "--region-clusters: 'us-est-1' is not an AWS region where EKS runs (did you mean us-west-1, us-east-1",
        ),
        (
            ("--region-clusters", "us-east-1=prod,-bad"),
            "--region-clusters: us-east-1: '-bad' is not a valid EKS cluster",
        ),
        (("--region-clusters", "us-east-1=prod,prod"), "--region-clusters: us-east-1: prod listed twice"),
        (("--region-clusters", "us-east-1="), "--region-clusters: us-east-1: name at least one cluster"),
        (("--region-clusters", "us-east-1=a", "--region-clusters", "cn-north-1=b"), "one config holds one partition"),
        (("--region-clusters", "us-east-1=a", "--kms-key-arn", "alias/eks"), "--kms-key-arn: 'alias/eks' is not a KMS"),
        (
            ("--region-clusters", "us-east-1=a", "--firehose-role-arn", "arn:aws:iam::1:role/x"),
            "--firehose-role-arn: 'arn:aws:iam::1:role/x' is not an IAM role ARN",
        ),
        (
            ("--region-clusters", "us-east-1=a", "--filter-pattern", '{ $.kind = "Event"'),
            "--filter-pattern: missing closing '}' (column",
        ),
        (("--region-clusters", "us-east-1=a", "--notify-email", "not-an-address"), "--notify-email: 'not-an-address'"),
        (("--region-clusters", "us-east-1=a", "--transition-days", "soon"), "--transition-days: enter a whole number"),
        # cross-field and range problems come from eksight.config, per field, with the flag that sets it
        (
            ("--region-clusters", "eu-west-1=a", "--account", "222233334444", "--kms-key-arn", KEY_EU),
            "regions.eu-west-1.encryption.existing_kms_key_arn: key belongs to account 111122223333, not 222233334444. "
            "Fix: use a key of the target account  [--kms-key-arn]",
        ),
        (
            ("--region-clusters", "us-east-1=a", "--learning-days", "120"),
            "detection.learning_days: must be ≤ 90. Fix: set it to 90 or less  [--learning-days]",
        ),
        (
            ("--region-clusters", "us-east-1=a", "--sns-topic-arn", "eu-west-1=arn:aws:sns:eu-west-1:111122223333:t"),
            "--sns-topic-arn: eu-west-1 is not one of the configured regions",
        ),
    ],
)
def test_bad_values_are_reported_per_field_and_nothing_is_written(
    offline: Path, args: tuple[str, ...], line: str
) -> None:
    result = generate(*args)
    assert result.exit_code == 2, result.output
    assert line in result.stderr
    assert not (offline / "eksight.config.json").exists()


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (("--tag", "team"), "--tag: 'team' is not KEY=VALUE"),
        (("--tag", "team="), "--tag: tag 'team' has no value"),
        (("--tag", "=x"), "--tag: '=x' is not KEY=VALUE"),
        (("--name-prefix", ""), "--name-prefix: empty value"),
        (("--account", " "), "--account: empty value"),
        (("--notify-email", ""), "--notify-email: empty value"),
        (("--bucket-arn", "us-east-1="), "--bucket-arn: empty value"),
        (("--output", ""), "--output: empty value"),
    ],
)
def test_blank_values_are_rejected_never_written(offline: Path, args: tuple[str, ...], line: str) -> None:
    result = generate("--region-clusters", "us-east-1=prod", *args)
    assert result.exit_code == 2
    assert line in result.stderr
    assert not list(offline.glob("*.json"))


def test_every_bad_flag_is_reported_at_once(offline: Path) -> None:
    result = generate("--region-clusters", "us-east-1=prod", "--tag", "a", "--account", "12", "--name-prefix", "UP")
    assert result.exit_code == 2
    assert {flag for flag in ("--tag", "--account", "--name-prefix") if f"- {flag}:" in result.stderr} == {
        "--tag",
        "--account",
        "--name-prefix",
    }


def test_interactive_mode_needs_a_terminal(offline: Path) -> None:
    result = CliRunner().invoke(main, ["generate", "--region-clusters", "us-east-1=prod"], input="")
    assert result.exit_code == 2
    assert "standard input is not a terminal: pass --noninteractive" in result.stderr


# ---- --json and CloudShell ------------------------------------------------------------------------------------


def test_json_result_parses(offline: Path) -> None:
    result = generate("--region-clusters", "us-east-1=prod,staging", "--region-clusters", "us-west-2=batch", "--json")
    assert result.exit_code == 0
    document = json.loads(result.stdout)  # stdout holds only the JSON; messages went to stderr
    assert document["ok"] is True and document["written"] is True
    assert document["path"] == str(offline / "eksight.config.json")
    assert document["regions"] == {"us-east-1": ["prod", "staging"], "us-west-2": ["batch"]}
    assert document["clusters"] == ["batch", "prod", "staging"]
    assert document["plan"] is None and document["diff"] is None
    assert document["config"] == json.loads((offline / "eksight.config.json").read_text())
    config = str(offline / "eksight.config.json")
    assert document["next_commands"] == [
        f"cd {ROOT}",
        f"make synth CONFIG={config}",
        "npx cdk bootstrap aws://ACCOUNT/us-east-1",
        "npx cdk bootstrap aws://ACCOUNT/us-west-2",
        f"npx cdk deploy --all -c config={config}",
        f"eksight check --config {config}",
    ]
    assert "Wrote" in result.stderr


def test_json_errors_parse_and_name_the_flag(offline: Path) -> None:
    result = generate("--region-clusters", "us-east-1=prod", "--learning-days", "120", "--json")
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert document["ok"] is False
    assert document["problems"] == [
        {
            "field": "detection.learning_days",
            "flag": "--learning-days",
            "message": "must be ≤ 90. Fix: set it to 90 or less",
        }
    ]


def test_cloudshell_changes_the_next_steps(offline: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = generate("--region-clusters", "us-east-1=prod", "--json")
    monkeypatch.setenv("AWS_EXECUTION_ENV", "CloudShell")
    shell = generate("--region-clusters", "us-east-1=prod", "--json", "--overwrite")
    before, after = json.loads(plain.stdout), json.loads(shell.stdout)
    assert (before["cloudshell"], after["cloudshell"]) == (False, True)
    assert "npx cdk bootstrap aws://ACCOUNT/us-east-1" in before["next_commands"]
    assert (
        "npx cdk bootstrap aws://$(aws sts get-caller-identity --query Account --output text)/us-east-1"
        in after["next_commands"]
    )
    assert "python3 --version" in after["next_commands"] and "python3 --version" not in before["next_commands"]
    assert "AWS CloudShell" in shell.stderr and "CloudShell" not in plain.stderr


def test_next_steps_use_the_account_and_paths_relative_to_the_checkout() -> None:
    root = project_root()
    assert root is not None
    steps = next_steps(
        root / "examples" / "minimal.json", ["us-east-1"], account="111122223333", cloudshell=False, root=root, cwd=root
    )
    assert [s.command for s in steps] == [
        "make synth CONFIG=examples/minimal.json",
        "npx cdk bootstrap aws://111122223333/us-east-1",
        "npx cdk deploy --all -c config=examples/minimal.json",
        "eksight check --config examples/minimal.json",
    ]


@pytest.mark.slow
def test_plan_synthesizes_and_diffs_the_written_config(offline: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The one test that runs the CDK CLI (~50 s): `cdk synth` of the config just written, summarised, then
    `cdk diff` against a local moto server standing in for the account, counted per stack."""
    with moto_server() as endpoint:
        for name, value in credentials(endpoint).items():
            monkeypatch.setenv(name, value)
        result = generate(
            "--region-clusters",
            "eu-west-1=prod,staging",
            "--enable-audit-logging",
            "--learning-days",
            "3",
            "--notify-email",
            "secops@example.com",
            "--plan",
            "--json",
        )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    plan = {stack["stack"]: stack for stack in document["plan"]}
    assert set(plan) == {"eksight-ingestion-eu-west-1", "eksight-detection-eu-west-1"}
    ingestion = {line["label"]: line["text"] for line in plan["eksight-ingestion-eu-west-1"]["lines"]}
    assert ingestion["clusters"] == "prod, staging  (audit logging: enabled by this stack)"
    detection = {line["label"]: line["text"] for line in plan["eksight-detection-eu-west-1"]["lines"]}
    assert detection["detector"].endswith("learning 3 d")
    assert detection["alerts"].endswith("1 email subscription(s)")
    assert "eksight-ingestion-eu-west-1  (" in result.stderr  # the human summary went to stderr
    assert f"Deploy all with `npx cdk deploy --all -c config={offline / 'eksight.config.json'}`" in result.stderr
    assert "!!!" not in result.stderr and "b'" not in result.stderr  # no Node end-of-life banner
    # nothing is deployed in the (moto) account: every resource of each template is to be added
    assert document["diff"] == {
        name: {"add": stack["resources"], "change": 0, "remove": 0, "replace": 0} for name, stack in plan.items()
    }
    assert "eksight-ingestion-eu-west-1: " in result.stderr and " to add, 0 to change, 0 to remove" in result.stderr
    assert "npx cdk bootstrap aws://123456789012/eu-west-1" in document["next_commands"]  # the account is known
    assert document["seconds"]["synth"] > 0


# ---- the pure pieces ------------------------------------------------------------------------------------------


def test_answers_at_their_defaults_write_nothing_extra() -> None:
    answers = Answers(
        regions=[RegionAnswers("us-east-1", ["prod"])],
        name_prefix="eksight",
        versioning=True,
        expiration_days=365,
        transition_days=90,
        transition_storage_class="GLACIER_IR",
        access_logging=True,
        key_rotation_period_days=365,
        key_deletion_window_days=30,
        buffering_interval_seconds=60,
        buffering_size_mib=16,
        enable_audit_logging=False,
        learning_days=7,
        securityhub=True,
        securityhub_min_severity="HIGH",
        notify_min_severity="MEDIUM",
    )  # notifications are off: their threshold means nothing
    assert answers_to_config(answers) == {"regions": {"us-east-1": {"clusters": ["prod"]}}}


def test_never_transition_and_disabled_security_hub() -> None:
    answers = Answers(
        regions=[RegionAnswers("us-east-1", ["prod"])],
        transition_days="never",
        transition_storage_class="DEEP_ARCHIVE",
        securityhub=False,
        securityhub_min_severity="LOW",
    )
    content, deployment = validate_answers(answers)
    assert content["defaults"] == {
        "archive": {"transition_days": None},
        "findings": {"securityhub": {"enabled": False}},
    }
    assert deployment.regions[0].options.archive.transition_days is None


def test_answers_round_trip_and_flags_overlay_a_cache() -> None:
    cached = Answers(
        regions=[RegionAnswers("us-east-1", ["prod"], bucket_arn="arn:aws:s3:::abc")],
        tags={"team": "a"},
        learning_days=3,
        output="old.json",
    )
    assert Answers.from_dict(json.loads(json.dumps(cached.to_dict()))) == cached
    flags = Answers(tags={"team": "b"}, output="new.json")
    merged = cached.overlay(flags)
    assert (merged.tags, merged.output, merged.learning_days, merged.regions) == (
        {"team": "b"},
        "new.json",
        3,
        cached.regions,
    )


def test_config_problems_map_to_flags() -> None:
    assert flag_for("regions.eu-west-1.encryption.existing_kms_key_arn") == "--kms-key-arn"
    assert flag_for("defaults.findings.notifications.email.0") == "--notify-email"
    assert flag_for("regions.us-east-2") == "--region-clusters"
    assert flag_for("detection.learning_days") == "--learning-days"
    with pytest.raises(ConfigError) as error:
        validate_answers(Answers(regions=[RegionAnswers("us-east-1", ["prod"])], expiration_days=30))
    assert [(path, flag_for(path)) for path, _ in error.value.problems] == [
        ("defaults.archive", "--bucket-arn / --expiration-days / --transition-days"),  # once, not again per region
    ]


def test_cache_expires_after_an_hour_and_ignores_garbage(tmp_path: Path) -> None:
    path = tmp_path / "answers.json"
    answers = Answers(regions=[RegionAnswers("us-east-1", ["prod"])])
    cache.save(answers, now=1000.0, path=path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert cache.load(now=1000.0 + 3599, path=path).answers == answers  # type: ignore[union-attr]
    assert cache.load(now=1000.0 + 3601, path=path) is None
    assert cache.load(now=999.0 - 60, path=path) is None  # saved "in the future": clock skew, not trusted
    path.write_text("{not json")
    assert cache.load(path=path) is None
    path.write_text(json.dumps({"version": 1, "saved_at": 1000.0, "answers": {"regions": "nope"}}))
    assert cache.load(now=1000.0, path=path) is None


def test_cdk_diff_summary_counts_resources_per_stack() -> None:
    diffs = summarize_diff((DATA / "cdk-diff.txt").read_text())
    assert {name: (d.add, d.change, d.remove, d.replace) for name, d in diffs.items()} == {
        "eksight-ingestion-us-east-1": (21, 0, 0, 0),
        "eksight-detection-us-east-1": (0, 2, 1, 1),
        "eksight-ingestion-eu-west-1": (0, 0, 0, 0),
    }
    assert diffs["eksight-detection-us-east-1"].text() == (
        "eksight-detection-us-east-1: 0 to add, 2 to change (1 replaced), 1 to remove"
    )
    assert diffs["eksight-ingestion-eu-west-1"].text() == "eksight-ingestion-eu-west-1: no changes"


def test_yes_asks_nothing_and_replaces_an_existing_file(offline: Path) -> None:
    existing = offline / "eksight.config.json"
    existing.write_text('{"regions": {"us-east-1": {"clusters": ["old"]}}}\n')
    result = CliRunner().invoke(main, ["generate", "--yes", "--region-clusters", "eu-west-1=new"])
    assert result.exit_code == 0, result.output
    assert json.loads(existing.read_text())["regions"] == {"eu-west-1": {"clusters": ["new"]}}


def test_outside_the_checkout_the_schema_is_a_relative_path_too(offline: Path) -> None:
    assert generate("--region-clusters", "us-east-1=prod").exit_code == 0
    reference = json.loads((offline / "eksight.config.json").read_text())["$schema"]
    assert not reference.startswith("file:") and not Path(reference).is_absolute()
    assert (offline / reference).resolve() == (ROOT / "schema" / "eksight.config.schema.json").resolve()


def test_a_written_config_reads_back_as_the_same_answers() -> None:
    answers = Answers(
        regions=[RegionAnswers("eu-west-1", ["a", "b"], kms_key_arn=KEY_EU), RegionAnswers("us-east-1", ["c"])],
        tags={"team": "sec"},
        transition_days="never",
        notify_emails=["secops@example.com"],
        notify_min_severity="CRITICAL",
        learning_days=3,
        securityhub=False,
        buffering_size_mib=64,
        name_prefix="sec",
    )
    content = answers_to_config(answers, schema="./s.json")
    loaded, dropped = answers_from_config(content)
    assert dropped == [] and loaded == answers


def test_config_fields_generate_does_not_ask_about_are_named() -> None:
    _, dropped = answers_from_config(
        {
            "regions": {"us-east-1": {"clusters": ["x"], "delivery": {"buffering_size_mib": 5}}},
            "defaults": {"archive": {"versioning": False}, "findings": {"eventbridge_bus_name": "b"}},
        }
    )
    assert dropped == ["regions.us-east-1.delivery.buffering_size_mib", "defaults.findings.eventbridge_bus_name"]


def test_cdk_runs_with_the_node_end_of_life_banner_silenced_for_the_running_node(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import subprocess

    from eksight.tools.setup.planning import SILENCE_NODE_EOL, cdk_env

    major = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout[1:].split(".")[0]
    monkeypatch.setenv(SILENCE_NODE_EOL, "16")  # the user's own value is kept
    assert cdk_env()[SILENCE_NODE_EOL].split(",") == ["16", major]
    monkeypatch.setenv(SILENCE_NODE_EOL, major)
    assert cdk_env()[SILENCE_NODE_EOL] == major
