"""`eksight generate`, interactive, through a pseudo-terminal: each test answers the prompts like a person and
then checks the config file that was written (loaded with eksight.config.load), not only the screen."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pexpect
import pytest

from eksight.config import load
from tests.setup.pty_session import (
    DOWN,
    ENTER,
    PYTHON,
    ROOT,
    SPACE,
    UP,
    Terminal,
    credentials,
    moto_server,
    offline_env,
)

SCHEMA = ROOT / "schema" / "eksight.config.schema.json"
KEY_EU = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
MENU = {
    "archive": "1",
    "kms": "2",
    "roles": "3",
    "filter": "4",
    "learning": "7",
    "securityhub": "8",
    "notifications": "9",
    "tags": "a",
    "account": "c",
}


def written(path: Path) -> dict[str, Any]:
    """The config as written, after checking it loads as a valid deployment config."""
    load(path)
    return json.loads(path.read_text())


def start(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Terminal:
    return Terminal(list(args), env or offline_env(tmp_path), cwd=tmp_path)


def basics(term: Terminal, region: str = "eu-west-1", clusters: str = "prod, staging") -> None:
    term.confirm("more than one region?", yes=False)
    term.answer("AWS region of the clusters:", region)
    term.answer(f"Cluster names in {region} (comma-separated):", clusters)


def test_single_region_without_credentials_types_cluster_names(tmp_path: Path) -> None:
    term = start(tmp_path, "--nocache")
    term.confirm("more than one region?", yes=False)
    term.answer("AWS region of the clusters:", "eu-west-1")
    term.expect("Could not list the EKS clusters in eu-west-1 (no AWS credentials)")
    term.answer("Cluster names in eu-west-1 (comma-separated):", "prod,,x")  # an empty name is refused
    term.on_screen("empty cluster name")
    term.keys("\x15")
    term.child.sendline("prod, staging")
    term.confirm("Configure advanced options?", yes=False)
    term.confirm("Synthesize and show the plan now", yes=False)
    assert term.finish() == 0
    assert written(tmp_path / "eksight.config.json") == {
        "$schema": os.path.relpath(SCHEMA, tmp_path),
        "regions": {"eu-west-1": {"clusters": ["prod", "staging"]}},
    }


def test_multi_region_rejects_unknown_and_cross_partition_regions(tmp_path: Path) -> None:
    term = start(tmp_path, "--nocache", "--output", "multi.json")
    term.confirm("more than one region?", yes=True)
    term.answer("AWS region of the clusters:", "us-east-1")
    term.answer("Cluster names in us-east-1 (comma-separated):", "prod-api, prod-batch")
    term.confirm("Configure another region?", yes=True)
    term.answer("Next region:", "eu-wset-1")
    term.on_screen("did you mean eu-west-1")
    term.keys("\x15")
    term.child.sendline("cn-north-1")
    term.on_screen("one config holds one partition")
    term.keys("\x15")
    term.child.sendline("us-east-1")
    term.on_screen("us-east-1 is already configured")
    term.keys("\x15")
    term.child.sendline("eu-west-1")
    term.answer("Cluster names in eu-west-1 (comma-separated):", "eu-prod")
    term.confirm("Configure another region?", yes=False)
    term.confirm("Configure advanced options?", yes=False)
    term.confirm("Synthesize and show the plan now", yes=False)
    assert term.finish() == 0
    assert written(tmp_path / "multi.json")["regions"] == {
        "us-east-1": {"clusters": ["prod-api", "prod-batch"]},
        "eu-west-1": {"clusters": ["eu-prod"]},
    }


def test_cached_answers_are_offered_and_reused(tmp_path: Path) -> None:
    env = offline_env(tmp_path)
    first = start(tmp_path, "--output", "first.json", env=env)
    basics(first)
    first.confirm("Configure advanced options?", yes=True)
    first.menu(MENU["tags"])
    first.answer("Tag as key=value:", "team=platform")
    first.answer("Tag as key=value:", "")
    first.menu(MENU["learning"])
    first.answer("Days the behavioural baselines learn", "21", clear=True)
    first.choose("Done when finished")
    first.confirm("Synthesize and show the plan now", yes=False)
    assert first.finish() == 0
    assert (tmp_path / "xdg" / "eksight" / "generate-answers.json").is_file()

    second = start(tmp_path, "--output", "second.json", env=env)  # the flag wins over the cached output path
    second.confirm("Use the answers of your last run", yes=True)
    second.confirm("Synthesize and show the plan now", yes=False)  # nothing else is asked
    assert second.finish() == 0
    assert "eu-west-1: prod, staging (+ 2 advanced options)" in second.screen
    expected = {
        "$schema": os.path.relpath(SCHEMA, tmp_path),
        "tags": {"team": "platform"},
        "detection": {"learning_days": 21},
        "regions": {"eu-west-1": {"clusters": ["prod", "staging"]}},
    }
    assert written(tmp_path / "first.json") == expected
    assert written(tmp_path / "second.json") == expected

    third = start(tmp_path, "--nocache", "--output", "third.json", env=env)
    basics(third, region="us-east-1", clusters="other")  # not offered: the first prompt is the region question
    third.confirm("Configure advanced options?", yes=False)
    third.confirm("Synthesize and show the plan now", yes=False)
    assert third.finish() == 0
    assert "last run" not in third.screen


def test_advanced_existing_bucket_key_and_roles_with_an_invalid_combination_fixed(tmp_path: Path) -> None:
    term = start(tmp_path, "--nocache")
    basics(term)
    term.confirm("Configure advanced options?", yes=True)
    term.menu(MENU["account"])
    term.answer("Target AWS account id:", "222233334444")
    term.menu(MENU["archive"])
    term.choose("Archive bucket:")  # first entry: bring an existing bucket
    term.answer("Existing bucket ARN for eu-west-1:", "arn:aws:s3:::acme-eks-audit")
    term.menu(MENU["kms"])
    term.choose("KMS key of the archive and the streams:")
    term.answer("KMS key ARN in eu-west-1:", KEY_EU.replace("eu-west-1", "us-east-1"))
    term.on_screen("KMS keys are regional")
    term.keys("\x15")
    term.child.sendline(KEY_EU)
    term.menu(MENU["roles"])
    term.answer("Firehose delivery role ARN:", "arn:aws:iam::222233334444:role/audit-firehose")
    term.answer("CloudWatch Logs → Firehose role ARN:", "arn:aws:iam::222233334444:role/audit-cwl")
    term.choose("Done when finished")
    # the key belongs to another account than the target: reported per field, nothing written, back to the menu
    term.expect("regions.eu-west-1.encryption.existing_kms_key_arn: key belongs to account 111122223333")
    assert not (tmp_path / "eksight.config.json").exists()
    term.confirm("Change the answers in the advanced options?", yes=True)
    term.menu(MENU["account"])
    term.answer("Target AWS account id:", "", clear=True)
    term.choose("Done when finished")
    term.confirm("Synthesize and show the plan now", yes=False)
    assert term.finish() == 0
    assert written(tmp_path / "eksight.config.json") == {
        "$schema": os.path.relpath(SCHEMA, tmp_path),
        "defaults": {
            "delivery": {"existing_role_arn": "arn:aws:iam::222233334444:role/audit-firehose"},
            "subscription": {"existing_role_arn": "arn:aws:iam::222233334444:role/audit-cwl"},
        },
        "regions": {
            "eu-west-1": {
                "clusters": ["prod", "staging"],
                "archive": {"existing_bucket_arn": "arn:aws:s3:::acme-eks-audit"},
                "encryption": {"existing_kms_key_arn": KEY_EU},
            }
        },
    }


def test_advanced_filter_pattern_notifications_security_hub_and_tags(tmp_path: Path) -> None:
    term = start(tmp_path, "--nocache")
    basics(term)
    term.confirm("Configure advanced options?", yes=True)
    term.menu(MENU["filter"])
    term.answer("Subscription filter pattern:", '{ ($.kind = "Event") && ($.verb = "create" }')
    term.on_screen("the '(' at column 25 is never closed")  # names the column; Enter does not accept it
    term.keys("\x15")
    term.child.sendline('{ ($.kind = "Event") && ($.verb = "create") }')
    term.menu(MENU["notifications"])
    term.choose("Send readable alerts through SNS:")  # first entry: email addresses
    term.answer("Email addresses (comma-separated):", "secops@example.com, oncall@example.com")
    term.choose("Alert on findings of at least:", UP)  # the pointer starts on the default, HIGH
    term.menu(MENU["securityhub"])
    term.confirm("Import findings into AWS Security Hub?", yes=False)
    term.menu(MENU["tags"])
    term.answer("Tag as key=value:", "team=")  # a blank value is refused
    term.on_screen("has no value")
    term.keys("\x15")
    term.child.sendline("team=platform-security")
    term.answer("Tag as key=value:", "cost-center=sec-042")
    term.answer("Tag as key=value:", "")
    term.choose("Done when finished")
    term.confirm("Synthesize and show the plan now", yes=False)
    assert term.finish() == 0
    assert written(tmp_path / "eksight.config.json") == {
        "$schema": os.path.relpath(SCHEMA, tmp_path),
        "tags": {"team": "platform-security", "cost-center": "sec-042"},
        "defaults": {
            "subscription": {"filter_pattern": '{ ($.kind = "Event") && ($.verb = "create") }'},
            "findings": {
                "securityhub": {"enabled": False},
                "notifications": {"email": ["secops@example.com", "oncall@example.com"], "min_severity": "MEDIUM"},
            },
        },
        "regions": {"eu-west-1": {"clusters": ["prod", "staging"]}},
    }


def test_an_existing_config_is_offered_first_and_quitting_leaves_it(tmp_path: Path) -> None:
    existing = tmp_path / "eksight.config.json"
    existing.write_text('{"regions": {"us-east-1": {"clusters": ["keep-me"]}}}\n')
    term = start(tmp_path, "--nocache")
    term.choose("eksight.config.json exists.", DOWN, DOWN)  # the first question: Load / Start over / Quit
    assert term.finish() == 1
    assert existing.read_text() == '{"regions": {"us-east-1": {"clusters": ["keep-me"]}}}\n'
    assert "left as it was; nothing written" in term.screen
    assert "more than one region" not in term.screen


def test_an_existing_config_loads_as_the_defaults_and_is_replaced_without_asking_again(tmp_path: Path) -> None:
    existing = tmp_path / "eksight.config.json"
    existing.write_text(
        json.dumps(
            {
                "$schema": "file:///somewhere/else.json",
                "tags": {"team": "sec"},
                "detection": {"learning_days": 3},
                "regions": {"eu-west-1": {"clusters": ["prod"]}},
            }
        )
    )
    term = start(tmp_path, "--nocache")
    term.choose("eksight.config.json exists.")  # Enter: the default, Load it
    term.confirm("Keep its regions and clusters (eu-west-1: prod)?", yes=False)
    basics(term, region="us-east-1", clusters="api")
    term.expect("Configure advanced options?")
    term.on_screen("Configure advanced options? (y/N)")
    term.keys(ENTER)  # Enter alone: the default shown in capitals, No
    term.confirm("Synthesize and show the plan now", yes=False)
    assert term.finish() == 0
    assert "Overwrite" not in term.screen
    assert written(existing) == {
        "$schema": os.path.relpath(SCHEMA, tmp_path),
        "tags": {"team": "sec"},
        "detection": {"learning_days": 3},
        "regions": {"us-east-1": {"clusters": ["api"]}},
    }


def test_yes_no_questions_wait_for_enter(tmp_path: Path) -> None:
    term = start(tmp_path, "--nocache")
    term.expect("more than one region?")
    term.keys("n")
    term.on_screen("more than one region? (y/N) No")
    term.keys("y")  # a change of mind before Enter
    with pytest.raises(AssertionError):
        term.on_screen("AWS region of the clusters:", timeout=1.5)  # the key alone answered nothing
    term.keys(ENTER)
    term.answer("AWS region of the clusters:", "eu-west-1")
    term.answer("Cluster names in eu-west-1 (comma-separated):", "prod")
    term.confirm("Configure another region?", yes=False)  # the yes above was taken on Enter
    term.confirm("Configure advanced options?", yes=False)
    term.confirm("Synthesize and show the plan now", yes=False)
    assert term.finish() == 0


def test_flags_pre_answer_prompts_and_declining_the_plan_prints_cloudshell_steps(tmp_path: Path) -> None:
    env = offline_env(tmp_path, AWS_EXECUTION_ENV="CloudShell")
    term = start(tmp_path, "--nocache", "--region-clusters", "us-west-2=prod", "--tag", "team=sec", env=env)
    term.confirm("Configure advanced options?", yes=False)  # no region or cluster question: the flag answered
    term.confirm("Synthesize and show the plan now", yes=False)
    assert term.finish() == 0
    assert "region of the clusters" not in term.screen
    config = tmp_path / "eksight.config.json"
    assert written(config) == {
        "$schema": os.path.relpath(SCHEMA, tmp_path),
        "tags": {"team": "sec"},
        "regions": {"us-west-2": {"clusters": ["prod"]}},
    }
    screen = " ".join(term.screen.split())
    for command in (
        f"cd {ROOT}",
        f"make synth CONFIG={config}",
        "npx cdk bootstrap aws://$(aws sts get-caller-identity --query Account --output text)/us-west-2",
        f"npx cdk deploy --all -c config={config}",
        f"eksight check --config {config}",
    ):
        assert command in screen
    assert "AWS CloudShell" in screen


# ---- with working credentials (a local moto server) -------------------------------------------------------


@pytest.fixture
def moto_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


def test_clusters_are_picked_from_eks_list_clusters(tmp_path: Path, moto_endpoint: str) -> None:
    eks = boto3.client("eks", region_name="us-west-2", endpoint_url=moto_endpoint)
    for name in ("alpha", "beta", "gamma"):
        eks.create_cluster(
            name=name, roleArn="arn:aws:iam::123456789012:role/eks", resourcesVpcConfig={"subnetIds": ["subnet-1"]}
        )
    term = start(tmp_path, "--nocache", env=offline_env(tmp_path, **credentials(moto_endpoint)))
    term.confirm("more than one region?", yes=False)
    term.answer("AWS region of the clusters:", "us-west-2", clear=True)  # pre-filled from AWS_DEFAULT_REGION
    term.expect("Clusters in us-west-2 (space selects, enter confirms):")
    term.on_screen("(other names: type them)")  # the list, from eks:ListClusters, is drawn
    assert [name for name in ("alpha", "beta", "gamma") if name in term.screen] == ["alpha", "beta", "gamma"]
    term.keys(SPACE, DOWN, DOWN, SPACE, "\r")  # alpha and gamma
    term.confirm("Configure advanced options?", yes=False)
    term.confirm("Synthesize and show the plan now", yes=False)
    assert term.finish() == 0
    assert written(tmp_path / "eksight.config.json")["regions"] == {"us-west-2": {"clusters": ["alpha", "gamma"]}}


def test_ctrl_c_aborts_without_writing_or_caching(tmp_path: Path) -> None:
    term = start(tmp_path)
    basics(term)
    term.expect("Configure advanced options?")
    term.keys("\x03")
    assert term.finish() == 130
    assert "Aborted." in term.screen
    assert not (tmp_path / "eksight.config.json").exists()
    assert not (tmp_path / "xdg" / "eksight").exists()


def test_long_steps_show_a_spinner_and_the_seconds_elapsed(tmp_path: Path) -> None:
    code = (
        "import time\n"
        "from eksight.tools.setup.generate import Console\n"
        "with Console(json_mode=False).working('Synthesizing (offline)…'):\n"
        "    time.sleep(2.7)\n"
    )
    child = pexpect.spawn(
        str(PYTHON), ["-c", code], env=offline_env(tmp_path), cwd=str(tmp_path), encoding="utf-8", timeout=20
    )
    child.expect(r"\r[|/\\-] Synthesizing \(offline\)… 2 s")  # redrawn in place while the work runs
    child.expect(r"Synthesizing \(offline\)… done in 3 s\.")
    child.expect(pexpect.EOF)
    piped = subprocess.run(
        [str(PYTHON), "-c", code.replace("2.7", "0")], env=offline_env(tmp_path), capture_output=True, text=True
    )
    assert piped.stdout == "Synthesizing (offline)…\nSynthesizing (offline)… done in 0 s.\n"  # no spinner in a pipe


def test_ctrl_c_with_json_still_answers_json(tmp_path: Path) -> None:
    term = start(tmp_path, "--nocache", "--json")
    term.expect("more than one region?")
    term.keys("\x03")
    assert term.finish() == 130
    assert '{"ok": false, "error": "aborted", "problems": []}' in term.screen
