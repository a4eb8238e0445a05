"""`eksight check`: is every configured cluster ready for eksight, and is the deployed pipeline delivering?

Each check is a small function taking the boto3 clients it needs (so tests pass moto's) and returning a
`Check` row: OK, WARN, FAIL or UNKNOWN (could not be determined, e.g. a simulation the caller may not run;
never a failure). Per cluster: exists (eks:DescribeCluster), audit logging on, log group present,
subscription-filter slot free (CloudWatch Logs allows two per log group; eksight's own filter doesn't count
against it), archive delivering (objects under the cluster's audit/ prefix in the last 24 h). Per region: the
ingestion and detection stacks. Once: the credentials' account, whether the caller may deploy
(iam:SimulatePrincipalPolicy), and the config's suppressions that have expired (with the commands to renew or
remove them).

`--fix` turns on the EKS `audit` log type as the stack's custom resource does (eksight.adapters.eks_logging: no
other type is turned off), then waits (bounded) and checks again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from eksight.adapters.eks_logging import (
    LoggingUpdateFailed,
    audit_logging_on,
    cluster_log_group_exists,
    enable_audit_logging,
    enabled_log_types,
)
from eksight.core import archive_layout
from eksight.core.detection_options import DetectionOptions
from eksight.core.eks import cluster_log_group
from eksight.tools.setup.progress import working
from eksight.tools.suppress import renew_and_remove_commands

OK, WARN, FAIL, UNKNOWN = "OK", "WARN", "FAIL", "UNKNOWN"
DELIVERY_WINDOW = timedelta(hours=24)
NEW_STACK_GRACE = timedelta(hours=1)
MAX_SUBSCRIPTION_FILTERS = 2
WAIT_TIMEOUT_SECONDS = 600
WAIT_POLL_SECONDS = 15

# What `cdk deploy` of eksight's stacks does with the caller's permissions when it does not go through the
# CDK bootstrap roles (one representative action per kind of resource the stacks create).
DEPLOY_ACTIONS = (
    "cloudformation:CreateChangeSet",
    "cloudformation:ExecuteChangeSet",
    "cloudformation:DescribeStacks",
    "iam:CreateRole",
    "iam:PutRolePolicy",
    "iam:PassRole",
    "s3:CreateBucket",
    "s3:PutBucketPolicy",
    "s3:PutBucketNotification",
    "s3:PutObject",
    "kms:CreateKey",
    "kms:PutKeyPolicy",
    "firehose:CreateDeliveryStream",
    "logs:CreateLogGroup",
    "logs:PutSubscriptionFilter",
    "sqs:CreateQueue",
    "sqs:SetQueueAttributes",
    "lambda:CreateFunction",
    "lambda:CreateEventSourceMapping",
    "events:CreateEventBus",
    "events:PutRule",
    "events:PutTargets",
    "dynamodb:CreateTable",
    "eks:DescribeCluster",
)
AUDIT_ACTIONS = ("eks:UpdateClusterConfig",)
BOOTSTRAP_QUALIFIER = "hnb659fds"

Clients = Callable[[str, str], Any]  # (service, region) -> boto3 client


@dataclass
class Check:
    region: str
    cluster: str  # "" for a region's or the caller's check
    name: str
    status: str
    detail: str
    fix: str = ""


def _error_code(error: Exception) -> str:
    return getattr(error, "response", {}).get("Error", {}).get("Code", "") or type(error).__name__


def _client_error() -> type[Exception]:
    from botocore.exceptions import ClientError

    return ClientError


# ---- the config ----------------------------------------------------------------------------------------------


def check_suppressions(detection: DetectionOptions, today: date, config_hint: str) -> list[Check]:
    """One WARN per expired `detection.suppressions` entry (its findings are forwarded again), with the commands
    that renew or remove it; one OK row when entries exist and none has expired; nothing without entries."""
    expired = [entry for entry in detection.suppressions if entry.expired(today)]
    if not expired:
        count = len(detection.suppressions)
        return [Check("", "", "suppressions", OK, f"{count} active, none expired")] if count else []
    checks = []
    for entry in expired:
        renew, remove = renew_and_remove_commands(entry, config_hint)
        checks.append(
            Check(
                "",
                "",
                "suppression expired",
                WARN,
                f"{entry.label} expired on {entry.expires}: its findings are forwarded again ({entry.reason})",
                fix=f"renew: {renew} ; or remove: {remove} ; then deploy",
            )
        )
    return checks


# ---- per cluster ---------------------------------------------------------------------------------------------


def check_cluster(eks: Any, region: str, cluster: str) -> tuple[Check, dict[str, Any] | None]:
    try:
        description = eks.describe_cluster(name=cluster)["cluster"]
    except _client_error() as error:
        if _error_code(error) == "ResourceNotFoundException":
            return Check(
                region,
                cluster,
                "cluster",
                FAIL,
                f"no EKS cluster {cluster!r} in {region}",
                "correct the name in the config, or remove the cluster",
            ), None
        return Check(
            region,
            cluster,
            "cluster",
            UNKNOWN,
            f"eks:DescribeCluster failed ({_error_code(error)})",
            "allow eks:DescribeCluster",
        ), None
    status = description.get("status", "?")
    detail = f"{status}, Kubernetes {description.get('version', '?')}"
    if status in ("ACTIVE", "UPDATING"):
        return Check(region, cluster, "cluster", OK, detail), description
    return Check(region, cluster, "cluster", WARN, detail, "wait until the cluster is ACTIVE"), description


def logging_command(cluster: str, region: str, enabled: set[str]) -> str:
    types = json.dumps(sorted(enabled | {"audit"}))
    return (
        f"eksight check --fix, or: aws eks update-cluster-config --region {region} --name {cluster} --logging "
        f'\'{{"clusterLogging":[{{"types":{types},"enabled":true}}]}}\''
    )


def check_audit_logging(
    region: str, cluster: str, description: dict[str, Any], *, enabled_by_stack: bool, stack_deployed: bool
) -> Check:
    enabled = enabled_log_types(description)
    others = ", ".join(sorted(enabled - {"audit"})) or "none"
    if "audit" in enabled:
        return Check(region, cluster, "audit logging", OK, f"on (other log types on: {others})")
    if enabled_by_stack and not stack_deployed:
        return Check(
            region,
            cluster,
            "audit logging",
            WARN,
            "off; the stack turns it on when deployed (enable_audit_logging: true)",
        )
    return Check(
        region,
        cluster,
        "audit logging",
        FAIL,
        f"off (log types on: {others})",
        logging_command(cluster, region, enabled),
    )


def check_log_group(
    logs: Any, region: str, cluster: str, *, audit_on: bool, just_enabled: bool = False, pending_deploy: bool = False
) -> tuple[Check, bool]:
    group = cluster_log_group(cluster)
    try:
        exists = cluster_log_group_exists(logs, cluster)
    except _client_error() as error:
        return Check(
            region,
            cluster,
            "log group",
            UNKNOWN,
            f"logs:DescribeLogGroups failed ({_error_code(error)})",
            "allow logs:DescribeLogGroups",
        ), False
    if exists:
        return Check(region, cluster, "log group", OK, group), True
    if just_enabled or pending_deploy:
        return Check(
            region,
            cluster,
            "log group",
            WARN,
            f"{group} not created yet",
            "EKS creates it a few minutes after a log type is turned on; run eksight check again",
        ), False
    if not audit_on:
        return Check(
            region,
            cluster,
            "log group",
            FAIL,
            f"{group} missing",
            "turn on audit logging (eksight check --fix); EKS then creates it",
        ), False
    return Check(
        region,
        cluster,
        "log group",
        FAIL,
        f"{group} missing although audit logging is on",
        "EKS creates it when the control plane logs; if it was deleted, turn the audit log type off and on again",
    ), False


def check_subscription_slots(
    logs: Any,
    region: str,
    cluster: str,
    filter_name: str,
    *,
    stack_deployed: bool,
    deploy_hint: str = "npx cdk deploy --all -c config=…",
) -> Check:
    try:
        filters = logs.describe_subscription_filters(logGroupName=cluster_log_group(cluster)).get(
            "subscriptionFilters", []
        )
    except _client_error() as error:
        return Check(
            region,
            cluster,
            "subscription slot",
            UNKNOWN,
            f"logs:DescribeSubscriptionFilters failed ({_error_code(error)})",
            "allow logs:DescribeSubscriptionFilters",
        )
    ours = [f for f in filters if f.get("filterName") == filter_name]
    others = sorted(f.get("filterName", "?") for f in filters if f.get("filterName") != filter_name)
    taken = f"used by {', '.join(others)}" if others else "none used by others"
    if len(others) >= MAX_SUBSCRIPTION_FILTERS:
        return Check(
            region,
            cluster,
            "subscription slot",
            FAIL,
            f"both slots taken by other filters ({', '.join(others)}); CloudWatch Logs allows "
            f"{MAX_SUBSCRIPTION_FILTERS} per log group",
            f"remove one: aws logs delete-subscription-filter --region {region} --log-group-name "
            f"{cluster_log_group(cluster)} --filter-name {others[0]}",
        )
    if stack_deployed and not ours:
        return Check(
            region,
            cluster,
            "subscription slot",
            FAIL,
            f"eksight's filter {filter_name!r} is missing ({taken})",
            f"deploy the ingestion stack again: {deploy_hint}",
        )
    if ours:
        return Check(region, cluster, "subscription slot", OK, f"eksight's filter {filter_name!r} in place ({taken})")
    return Check(
        region,
        cluster,
        "subscription slot",
        OK,
        f"{MAX_SUBSCRIPTION_FILTERS - len(others)} of {MAX_SUBSCRIPTION_FILTERS} free ({taken})",
    )


def check_delivery(
    s3: Any, region: str, cluster: str, *, account: str, bucket: str, now: datetime, stack_created: datetime | None
) -> Check:
    """Objects Firehose wrote under the cluster's audit/ prefix in the last 24 h (today's and yesterday's
    UTC partitions, so a long archive is not listed)."""
    prefix = archive_layout.cluster_prefix(account, region, cluster)
    since = now - DELIVERY_WINDOW
    count, newest = 0, None
    try:
        for day in sorted({since.date(), now.date()}):
            paginator = s3.get_paginator("list_objects_v2")
            day_prefix = f"{prefix}year={day:%Y}/month={day:%m}/day={day:%d}/"
            for page in paginator.paginate(Bucket=bucket, Prefix=day_prefix):
                for item in page.get("Contents", []):
                    modified = item["LastModified"]
                    if modified >= since:
                        count += 1
                        newest = max(newest or modified, modified)
    except _client_error() as error:
        return Check(
            region,
            cluster,
            "delivery",
            UNKNOWN,
            f"could not list s3://{bucket}/{prefix} ({_error_code(error)})",
            "allow s3:ListBucket",
        )
    if count:
        minutes = int((now - newest).total_seconds() // 60) if newest else 0
        return Check(
            region,
            cluster,
            "delivery",
            OK,
            f"{count} object(s) in the last 24 h under s3://{bucket}/{prefix}, newest {minutes} min ago",
        )
    if stack_created is not None and now - stack_created < NEW_STACK_GRACE:
        return Check(
            region,
            cluster,
            "delivery",
            WARN,
            "nothing delivered yet (stack deployed under an hour ago)",
            "wait a few minutes; Firehose delivers every buffering interval",
        )
    return Check(
        region,
        cluster,
        "delivery",
        FAIL,
        f"no objects in the last 24 h under s3://{bucket}/{prefix}",
        "check audit logging, the subscription filter and the stream's DeliveryErrorLogGroup",
    )


# ---- per region ----------------------------------------------------------------------------------------------


@dataclass
class StackState:
    deployed: bool = False
    outputs: dict[str, str] = field(default_factory=dict)
    created: datetime | None = None


_HEALTHY = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}


def check_stack(cfn: Any, region: str, stack_name: str, deploy_hint: str) -> tuple[Check, StackState]:
    try:
        stacks = cfn.describe_stacks(StackName=stack_name).get("Stacks", [])
    except _client_error() as error:
        if "does not exist" in str(error):
            return Check(region, "", f"stack {stack_name}", WARN, "not deployed", deploy_hint), StackState()
        return Check(
            region,
            "",
            f"stack {stack_name}",
            UNKNOWN,
            f"cloudformation:DescribeStacks failed ({_error_code(error)})",
            "allow cloudformation:DescribeStacks",
        ), StackState()
    if not stacks:
        return Check(region, "", f"stack {stack_name}", WARN, "not deployed", deploy_hint), StackState()
    stack = stacks[0]
    status = stack.get("StackStatus", "?")
    state = StackState(
        deployed=True,
        outputs={o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])},
        created=stack.get("LastUpdatedTime") or stack.get("CreationTime"),
    )
    if status in _HEALTHY:
        return Check(region, "", f"stack {stack_name}", OK, status), state
    if status.endswith("_IN_PROGRESS") or status == "UPDATE_ROLLBACK_COMPLETE":
        return Check(
            region,
            "",
            f"stack {stack_name}",
            WARN,
            status,
            "wait for it to finish"
            if status.endswith("_IN_PROGRESS")
            else "the last update was rolled back: see the stack's events, fix, deploy again",
        ), state
    return Check(
        region,
        "",
        f"stack {stack_name}",
        FAIL,
        f"{status}: {stack.get('StackStatusReason', '')}".strip(": "),
        "see the stack's events in CloudFormation; delete a ROLLBACK_COMPLETE stack before deploying again",
    ), state


# ---- the caller ---------------------------------------------------------------------------------------------


def check_account(identity: dict[str, Any], expected: str | None) -> Check:
    account = identity.get("Account", "?")
    if expected and expected != account:
        return Check(
            "",
            "",
            "credentials",
            FAIL,
            f"the config targets account {expected}, these credentials are for {account} ({identity.get('Arn')})",
            "use credentials of the target account",
        )
    return Check("", "", "credentials", OK, f"account {account} as {identity.get('Arn')}")


def _principal_arn(iam: Any, caller_arn: str) -> str:
    """The IAM user or role behind the caller (an assumed-role session maps to its role's ARN, with path)."""
    parts = caller_arn.split(":")
    resource = parts[5] if len(parts) > 5 else ""
    if resource.startswith(("user/", "role/")):
        return caller_arn
    if resource.startswith("assumed-role/"):
        return iam.get_role(RoleName=resource.split("/")[1])["Role"]["Arn"]
    raise ValueError(f"cannot simulate the policies of {caller_arn}")


def _denied(iam: Any, principal: str, actions: Iterable[str], resources: list[str] | None = None) -> list[str]:
    denied = []
    params: dict[str, Any] = {"PolicySourceArn": principal, "ActionNames": list(actions)}
    if resources:
        params["ResourceArns"] = resources
    for page in iam.get_paginator("simulate_principal_policy").paginate(**params):
        denied += [r["EvalActionName"] for r in page.get("EvaluationResults", []) if r.get("EvalDecision") != "allowed"]
    return denied


def check_permissions(
    iam: Any, identity: dict[str, Any], regions: list[str], *, partition: str = "aws", audit_logging: bool = False
) -> Check:
    arn = identity.get("Arn", "")
    account = identity.get("Account", "")
    if arn.endswith(":root"):
        return Check(
            "",
            "",
            "deploy permissions",
            WARN,
            "the account's root user may do everything",
            "deploy with an IAM role or user instead of the root user",
        )
    actions = DEPLOY_ACTIONS + (AUDIT_ACTIONS if audit_logging else ())
    try:
        principal = _principal_arn(iam, arn)
        denied = _denied(iam, principal, actions)
        if not denied:
            return Check(
                "",
                "",
                "deploy permissions",
                OK,
                f"{principal} may run every action a deploy needs ({len(actions)} simulated)",
            )
        roles = [
            f"arn:{partition}:iam::{account}:role/cdk-{BOOTSTRAP_QUALIFIER}-deploy-role-{account}-{region}"
            for region in regions
        ]
        if not _denied(iam, principal, ["sts:AssumeRole"], roles):
            return Check(
                "",
                "",
                "deploy permissions",
                OK,
                f"deploys through the CDK bootstrap roles ({len(denied)} action(s) not allowed directly)",
            )
    except Exception as error:  # any refusal or unsupported simulation: unknown, never a failure
        reason = _error_code(error) if hasattr(error, "response") else str(error) or type(error).__name__
        return Check(
            "",
            "",
            "deploy permissions",
            UNKNOWN,
            f"could not simulate the caller's policies ({reason})",
            "allow iam:SimulatePrincipalPolicy (and iam:GetRole) to check, or just try the deploy",
        )
    return Check(
        "",
        "",
        "deploy permissions",
        FAIL,
        f"{principal} may not: {', '.join(sorted(denied))}",
        "run `npx cdk bootstrap` and allow sts:AssumeRole on the cdk-*-deploy-role, or grant these actions",
    )


# ---- all checks ----------------------------------------------------------------------------------------------


def run_checks(
    deployment: Any,
    clients: Clients,
    *,
    now: datetime | None = None,
    just_enabled: frozenset[tuple[str, str]] = frozenset(),
    config_hint: str = "eksight.config.json",
    identity: dict[str, Any] | None = None,
) -> list[Check]:
    """Every check for a parsed config (eksight.config.DeploymentConfig)."""
    now = now or datetime.now(UTC)
    first = deployment.regions[0].region
    identity = identity or clients("sts", first).get_caller_identity()
    checks = [check_account(identity, deployment.file.account)]
    checks += check_suppressions(deployment.file.detection, now.date(), config_hint)
    account = deployment.file.account or identity.get("Account", "")
    checks.append(
        check_permissions(
            clients("iam", first),
            identity,
            [r.region for r in deployment.regions],
            partition=deployment.regions[0].partition,
            audit_logging=any(r.options.enable_audit_logging for r in deployment.regions),
        )
    )
    deploy_hint = f"npx cdk deploy --all -c config={config_hint}"
    for region in deployment.regions:
        name = region.region
        stack_check, ingestion = check_stack(clients("cloudformation", name), name, region.stack_name, deploy_hint)
        detection_check, _ = check_stack(
            clients("cloudformation", name), name, region.detection_stack_name, deploy_hint
        )
        checks += [stack_check, detection_check]
        filter_name = ingestion.outputs.get("SubscriptionFilterName") or f"{region.name_prefix}-audit"
        eks, logs = clients("eks", name), clients("logs", name)
        for cluster in region.clusters:
            exists, description = check_cluster(eks, name, cluster)
            checks.append(exists)
            if description is None:
                continue
            audit = check_audit_logging(
                name,
                cluster,
                description,
                enabled_by_stack=region.options.enable_audit_logging,
                stack_deployed=ingestion.deployed,
            )
            checks.append(audit)
            audit_on = audit.status == OK
            group, group_exists = check_log_group(
                logs,
                name,
                cluster,
                audit_on=audit_on,
                just_enabled=(name, cluster) in just_enabled,
                pending_deploy=audit.status == WARN,
            )
            checks.append(group)
            if group_exists:
                checks.append(
                    check_subscription_slots(
                        logs, name, cluster, filter_name, stack_deployed=ingestion.deployed, deploy_hint=deploy_hint
                    )
                )
            else:
                checks.append(Check(name, cluster, "subscription slot", UNKNOWN, "no log group yet"))
            bucket = ingestion.outputs.get("ArchiveBucketName")
            if ingestion.deployed and bucket:
                checks.append(
                    check_delivery(
                        clients("s3", name),
                        name,
                        cluster,
                        account=account,
                        bucket=bucket,
                        now=now,
                        stack_created=ingestion.created,
                    )
                )
            elif not ingestion.deployed:
                checks.append(Check(name, cluster, "delivery", UNKNOWN, "stack not deployed"))
    return checks


# ---- --fix ----------------------------------------------------------------------------------------------------


def wait_for_audit_logging(
    eks: Any,
    cluster: str,
    update_id: str,
    *,
    timeout: float = WAIT_TIMEOUT_SECONDS,
    poll: float = WAIT_POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """ "" once the update succeeded and `audit` is on; otherwise why not (failed, or still pending at timeout)."""
    waited = 0.0
    while True:
        try:
            if audit_logging_on(eks, cluster, update_id):
                return ""
        except LoggingUpdateFailed as failed:
            return f"update {failed.status}: {failed.details}"
        if waited >= timeout:
            return f"still not on after {int(timeout)} s (update {update_id or '-'})"
        sleep(poll)
        waited += poll


# ---- output ---------------------------------------------------------------------------------------------------

_COLOURS = {OK: "green", WARN: "yellow", FAIL: "red", UNKNOWN: "cyan"}


def render_table(checks: list[Check], colour: bool = False) -> str:
    headers = ("REGION", "CLUSTER", "CHECK", "STATUS", "DETAIL")
    rows = [(c.region or "-", c.cluster or "-", c.name, c.status, c.detail) for c in checks]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers[:4])]
    indent = sum(widths) + 2 * len(widths)
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers[:4], widths, strict=True)) + "  DETAIL"]
    for check, row in zip(checks, rows, strict=True):
        status = row[3].ljust(widths[3])
        if colour:
            status = click.style(status, fg=_COLOURS.get(check.status))
        lines.append(
            "  ".join([row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2].ljust(widths[2]), status, row[4]])
        )
        if check.fix and check.status != OK:
            lines.append(" " * indent + f"fix: {check.fix}")
    counts = {s: sum(1 for c in checks if c.status == s) for s in (OK, WARN, FAIL, UNKNOWN)}
    lines.append("")
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no checks")
    return "\n".join(lines)


def default_clients() -> Clients:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session()
    made: dict[tuple[str, str], Any] = {}
    config = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3, "mode": "standard"})

    def client(service: str, region: str) -> Any:
        if (service, region) not in made:
            made[service, region] = session.client(service, region_name=region, config=config)
        return made[service, region]

    return client


def run(
    config_path: str,
    *,
    fix: bool,
    yes: bool,
    as_json: bool,
    clients: Clients | None = None,
    sleep: Callable[[float], None] = time.sleep,
    timeout: float = WAIT_TIMEOUT_SECONDS,
    now: datetime | None = None,
) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from eksight.config import ConfigError, load

    if not Path(config_path).is_file():  # the loader's own hint names cdk's -c config=; this command's flag differs
        return _stop(
            f"eksight check: {config_path} not found. Fix: pass --config PATH (the config you deployed), "
            "or write one with eksight generate",
            config_path,
            as_json,
        )
    try:
        deployment = load(config_path)
    except ConfigError as error:
        return _stop(str(error), config_path, as_json)
    clients = clients or default_clients()
    say = (lambda text="": click.echo(text, err=True)) if as_json else click.echo
    fixed: list[dict[str, str]] = []
    try:
        identity = clients("sts", deployment.regions[0].region).get_caller_identity()
    except (BotoCoreError, ClientError) as error:
        return _stop(
            f"eksight check: no working AWS credentials ({error}). Fix: configure credentials (aws "
            "configure sso, AWS_PROFILE, or run in AWS CloudShell)",
            config_path,
            as_json,
        )
    try:
        with working(f"Checking {_scope(deployment)}…", err=True):
            checks = run_checks(deployment, clients, now=now, config_hint=config_path, identity=identity)
        if fix:
            targets = [(c.region, c.cluster) for c in checks if c.name == "audit logging" and c.status != OK]
            if not targets:
                say("Nothing to fix: audit logging is on for every existing cluster.")
            else:
                names = ", ".join(f"{c} ({r})" for r, c in targets)
                if not yes and not click.confirm(
                    f"Turn on the EKS audit log type of {names}? Other log types stay as they are.",
                    default=False,
                    err=as_json,
                ):
                    say("Nothing changed.")
                else:
                    fixed = _fix(targets, clients, say, sleep=sleep, timeout=timeout)
                    enabled = frozenset((f["region"], f["cluster"]) for f in fixed if not f["error"])
                    checks = run_checks(
                        deployment, clients, now=now, just_enabled=enabled, config_hint=config_path, identity=identity
                    )
    except BotoCoreError as error:
        return _stop(
            f"eksight check: cannot reach AWS ({error}). Fix: configure credentials (aws configure sso, "
            "AWS_PROFILE) and a network route to AWS",
            config_path,
            as_json,
        )
    failed = any(c.status == FAIL for c in checks) or any(f["error"] for f in fixed)
    if as_json:
        click.echo(
            json.dumps(
                {"ok": not failed, "config": config_path, "checks": [asdict(c) for c in checks], "fixed": fixed},
                indent=2,
            )
        )
    else:
        click.echo(render_table(checks, colour=True))  # click drops the colours when stdout is no terminal
    return 1 if failed else 0


def _scope(deployment: Any) -> str:
    clusters = sum(len(r.clusters) for r in deployment.regions)
    return f"{clusters} cluster(s) in {len(deployment.regions)} region(s)"


def _stop(message: str, config_path: str, as_json: bool) -> int:
    """Checks could not run (exit 2): the reason on stderr, and with --json the same as a JSON result."""
    click.secho(message, fg="red", err=True)
    if as_json:
        click.echo(json.dumps({"ok": False, "config": config_path, "error": message, "checks": [], "fixed": []}))
    return 2


def _fix(
    targets: list[tuple[str, str]],
    clients: Clients,
    say: Callable[..., None],
    *,
    sleep: Callable[[float], None],
    timeout: float,
) -> list[dict[str, str]]:
    fixed = []
    for region, cluster in targets:
        eks = clients("eks", region)
        try:
            update_id = enable_audit_logging(eks, cluster)
            say(f"{cluster} ({region}): turning on audit logging" + (f" (update {update_id})…" if update_id else "…"))
            problem = wait_for_audit_logging(eks, cluster, update_id, timeout=timeout, sleep=sleep)
        except _client_error() as error:
            problem = f"{_error_code(error)}: {error}"
        say(
            f"{cluster} ({region}): "
            + (f"could not turn on audit logging: {problem}" if problem else "audit logging on")
        )
        fixed.append({"region": region, "cluster": cluster, "error": problem})
    return fixed
