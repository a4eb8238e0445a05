"""Turns on the EKS `audit` control-plane log type of each cluster at deploy time (opt-in)."""

from __future__ import annotations

from aws_cdk import ArnFormat, CustomResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr
from constructs import Construct

from stacks.constructs.lambda_package import RUNTIME, LambdaPackage
from stacks.constructs.nag import BASIC_EXECUTION_FINDING, acknowledge, acknowledge_wildcard_resources


class AuditLoggingEnabler(Construct):
    """One custom resource per cluster; see lambdas/audit_logging/handler.py for the semantics."""

    def __init__(
        self, scope: Construct, construct_id: str, *, clusters: tuple[str, ...], log_key: kms.IKey | None = None
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        cluster_arns = [stack.format_arn(service="eks", resource="cluster", resource_name=c) for c in clusters]
        update_arns = [
            stack.format_arn(service="eks", resource="cluster", resource_name=f"{c}/update/*") for c in clusters
        ]
        # eksight.core + eksight.adapters and the handler; boto3/botocore come with the runtime. Pure Python,
        # so the architecture is free: arm64 is the cheaper one.
        code = LambdaPackage("audit_logging", vendored_dependencies=False).code()
        functions = {}
        for name, handler in (("OnEvent", "handler.on_event"), ("IsComplete", "handler.is_complete")):
            function = lambda_.Function(
                self,
                name,
                runtime=RUNTIME,
                architecture=lambda_.Architecture.ARM_64,
                code=code,
                handler=handler,
                timeout=Duration.minutes(1),
                log_group=logs.LogGroup(
                    self,
                    f"{name}Logs",
                    retention=logs.RetentionDays.ONE_MONTH,
                    encryption_key=log_key,
                    removal_policy=RemovalPolicy.RETAIN,
                ),
                description=f"eksight: enable EKS audit logging ({name})",
            )
            function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["eks:DescribeCluster", "eks:DescribeUpdate"]
                    + (["eks:UpdateClusterConfig"] if name == "OnEvent" else []),
                    resources=cluster_arns + update_arns,
                )
            )
            functions[name] = function
        any_log_group = stack.format_arn(
            service="logs", resource="log-group", resource_name="*", arn_format=ArnFormat.COLON_RESOURCE_NAME
        )
        functions["IsComplete"].add_to_role_policy(
            iam.PolicyStatement(actions=["logs:DescribeLogGroups"], resources=[any_log_group])
        )
        provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=functions["OnEvent"],
            is_complete_handler=functions["IsComplete"],
            query_interval=Duration.seconds(20),
            total_timeout=Duration.minutes(30),  # EKS logging updates usually take 1-3 minutes
            log_group=logs.LogGroup(
                self,
                "ProviderLogs",
                retention=logs.RetentionDays.ONE_MONTH,
                encryption_key=log_key,
                removal_policy=RemovalPolicy.RETAIN,
            ),
            disable_waiter_state_machine_logging=False,
            waiter_state_machine_log_options=cr.LogOptions(
                destination=logs.LogGroup(
                    self,
                    "WaiterLogs",
                    retention=logs.RetentionDays.ONE_MONTH,
                    encryption_key=log_key,
                    removal_policy=RemovalPolicy.RETAIN,
                ),
                level=sfn.LogLevel.ALL,
                include_execution_data=False,
            ),
        )
        self.resources = {
            cluster: CustomResource(
                self,
                cluster,
                service_token=provider.service_token,
                resource_type="Custom::EksAuditLogging",
                properties={"ClusterName": cluster},
            )
            for cluster in clusters
        }
        self._acknowledge(functions, provider, update_arns, any_log_group)

    @staticmethod
    def _acknowledge(
        functions: dict[str, lambda_.Function], provider: cr.Provider, update_arns: list[str], any_log_group: str
    ) -> None:
        framework = _framework_functions(provider)
        for function in (*functions.values(), *framework):
            acknowledge(
                function,
                BASIC_EXECUTION_FINDING,
                "The enabler's functions (ours and the CDK Provider framework's) use "
                "AWSLambdaBasicExecutionRole only to write their own CloudWatch logs.",
            )
        for function in functions.values():
            acknowledge_wildcard_resources(
                function,
                update_arns,
                "EKS update ids are generated by UpdateClusterConfig, so DescribeUpdate is scoped to the "
                "updates of the configured clusters only.",
            )
        acknowledge_wildcard_resources(
            functions["IsComplete"],
            [any_log_group],
            "DescribeLogGroups cannot be scoped to one log group (it lists by prefix); it is read-only "
            "and used to wait for /aws/eks/<cluster>/cluster to exist.",
        )
        acknowledge_wildcard_resources(
            provider,
            [
                f"{function.function_arn}:*"
                for function in (*functions.values(), *framework)
                if function.node.id != "framework-onEvent"
            ],  # nothing invokes that one by version
            "The CDK Provider framework and its waiter state machine invoke their handler functions by "
            "any version or alias ('<function arn>:*').",
        )
        for function in framework:
            acknowledge(
                function,
                "AwsSolutions-L1",
                "The CDK Provider framework pins its own Node.js runtime for the framework functions.",
            )
        for function in functions.values():
            acknowledge(
                function,
                "AwsSolutions-L1",
                "eksight's Lambda functions deliberately target python3.12, the runtime its pinned "
                "dependencies are tested on; moving runtimes is a tested upgrade, not a silent drift.",
            )
        waiter = provider.node.find_child("waiter-state-machine")
        acknowledge(
            waiter,
            "AwsSolutions-IAM5[Resource::*]",
            "Step Functions log delivery (logs:CreateLogDelivery, PutResourcePolicy, ...) only "
            "accepts Resource '*'; this is the waiter state machine's logging to its own group.",
        )
        acknowledge(
            waiter,
            "AwsSolutions-SF2",
            "The Provider framework's waiter state machine only polls is_complete every 20 s during "
            "deploy; its executions are logged in full (level ALL), tracing adds nothing there.",
        )


def _framework_functions(provider: cr.Provider) -> list[lambda_.IFunction]:
    names = ("framework-onEvent", "framework-isComplete", "framework-onTimeout")
    return [child for name in names if isinstance(child := provider.node.try_find_child(name), lambda_.Function)]
