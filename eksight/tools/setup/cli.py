"""The `eksight generate` and `eksight check` commands (click). Imports only click: the prompts, the config
models and boto3 load when a command runs, so `eksight --help` and `eksight replay` stay fast."""

from __future__ import annotations

import sys

import click

_SEVERITIES = click.Choice(["INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"], case_sensitive=False)
_STORAGE = click.Choice(
    ["GLACIER_IR", "GLACIER", "DEEP_ARCHIVE", "STANDARD_IA", "INTELLIGENT_TIERING"], case_sensitive=False
)


def _upper(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    return value.upper() if value else value


@click.command(context_settings={"max_content_width": 120})
@click.option(
    "--region-clusters",
    multiple=True,
    metavar="REGION=C1,C2",
    help="A region and its clusters (repeat for more regions).",
)
@click.option("--output", "-o", metavar="PATH", help="Config file to write. Default: eksight.config.json.")
@click.option(
    "--bucket-arn",
    multiple=True,
    metavar="[REGION=]ARN",
    help="Existing archive bucket (REGION= when several regions are configured).",
)
@click.option("--versioning/--no-versioning", default=None, help="Keep object versions in a new bucket.")
@click.option("--expiration-days", type=int, help="Delete archived logs after this many days.")
@click.option("--transition-days", metavar="DAYS|never", help="Move logs to a colder storage class after DAYS.")
@click.option("--transition-storage-class", type=_STORAGE, callback=_upper, help="That storage class.")
@click.option("--access-logging/--no-access-logging", default=None, help="Access-log bucket for a new bucket.")
@click.option(
    "--kms-key-arn", multiple=True, metavar="ARN", help="Existing KMS key (one per region; its ARN names the region)."
)
@click.option("--key-rotation-days", type=int, help="Rotation period of a new key.")
@click.option("--key-deletion-window-days", type=int, help="Deletion waiting period of a new key.")
@click.option("--firehose-role-arn", metavar="ARN", help="Existing IAM role Firehose assumes.")
@click.option("--cloudwatch-role-arn", metavar="ARN", help="Existing IAM role CloudWatch Logs assumes.")
@click.option("--filter-pattern", metavar="PATTERN", help="Custom subscription filter pattern.")
@click.option("--buffering-interval", type=int, metavar="SECONDS", help="Firehose buffering interval.")
@click.option("--buffering-size", type=int, metavar="MIB", help="Firehose buffering size.")
@click.option(
    "--enable-audit-logging/--no-enable-audit-logging",
    default=None,
    help="Turn on the EKS audit log type during deploy.",
)
@click.option("--learning-days", type=int, help="Days the behavioural baselines learn (detection.learning_days).")
@click.option("--securityhub/--no-securityhub", default=None, help="Import findings into Security Hub.")
@click.option("--securityhub-min-severity", type=_SEVERITIES, callback=_upper, help="Lowest severity imported.")
@click.option("--notify-email", multiple=True, metavar="ADDRESS", help="Alert this address (repeatable).")
@click.option(
    "--sns-topic-arn",
    multiple=True,
    metavar="ARN",
    help="Alert through your own SNS topic (one per region; its ARN names the region).",
)
@click.option("--notify-min-severity", type=_SEVERITIES, callback=_upper, help="Lowest severity alerted.")
@click.option("--central-bus-arn", metavar="ARN", help="Also send every finding to this EventBridge bus.")
@click.option("--tag", multiple=True, metavar="KEY=VALUE", help="Tag every resource (repeatable).")
@click.option("--name-prefix", metavar="PREFIX", help="Prefix of stacks, filters and log groups.")
@click.option("--account", metavar="ID", help="Target AWS account (12 digits).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file without asking.")
@click.option("--plan/--no-plan", default=None, help="Synthesize and show the plan after writing.")
@click.option("--nocache", is_flag=True, help="Don't offer the answers of the last run.")
@click.option("--noninteractive", is_flag=True, help="Ask nothing: every answer comes from the flags.")
@click.option(
    "--yes", "-y", is_flag=True, help="For scripts: ask nothing (--noninteractive) and replace an existing file."
)
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable result on stdout.")
def generate(as_json: bool, **flags: object) -> None:
    """Write an eksight config for your clusters (asks, or takes flags), then show the plan.

    Only values that differ from eksight's defaults are written, and the file is validated before it is
    written. An existing config can be loaded as the defaults of every question. y/n questions take
    their answer on Enter; Enter alone takes the default shown in capitals. Example without questions:

      eksight generate --yes --region-clusters us-east-1=prod,dev
    """
    from eksight.tools.setup.generate import Options, run

    sys.exit(run(Options(json=as_json, **flags)))  # type: ignore[arg-type]


@click.command()
@click.option(
    "--config",
    "config_path",
    default="eksight.config.json",
    show_default=True,
    metavar="PATH",
    help="The deployment config to check.",
)
@click.option("--fix", is_flag=True, help="Turn on the EKS audit log type where it is off (asks first).")
@click.option("--yes", "-y", is_flag=True, help="Don't ask before --fix changes anything.")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
def check(config_path: str, fix: bool, yes: bool, as_json: bool) -> None:
    """Check the configured clusters and the deployed pipeline: cluster, audit logging, log group,
    subscription-filter slot, stacks, delivery, deploy permissions. Exit 0 when nothing FAILs."""
    from eksight.tools.setup.check import run

    sys.exit(run(config_path, fix=fix, yes=yes, as_json=as_json))
