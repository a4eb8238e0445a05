"""An Athena workgroup for hunting in the archive, and the query library as its named queries.

Enforced settings (clients cannot override them): results go to `athena-results/` of the archive bucket,
encrypted with the archive's KMS key; engine version 3; per-query CloudWatch metrics; and a bytes-scanned cutoff,
so a query over years of archive is cancelled at the cutoff instead of billing $5 per TB scanned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import aws_athena as athena
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from eksight.core import archive_layout

MIN_CUTOFF_BYTES = 10_000_000  # Athena's minimum for BytesScannedCutoffPerQuery


@dataclass(frozen=True)
class NamedQuery:
    name: str
    description: str
    sql: str


class HuntingWorkgroup(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        key: kms.IKey,
        database_name: str,
        cutoff_bytes: int,
        queries: Sequence[NamedQuery] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        if cutoff_bytes < MIN_CUTOFF_BYTES:
            raise ValueError(f"bytes-scanned cutoff {cutoff_bytes} is below Athena's minimum of {MIN_CUTOFF_BYTES}")
        self.workgroup = athena.CfnWorkGroup(
            self,
            "WorkGroup",
            # A workgroup has no generated name: derive a unique one from the construct path (no physical name
            # chosen by hand, and two deployments in one account never collide).
            name=f"eksight-{self.node.addr[:12]}",
            description="eksight: hunting queries over the EKS audit archive and findings",
            state="ENABLED",
            recursive_delete_option=True,  # the named queries and saved history go with the stack
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=cutoff_bytes,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(
                    selected_engine_version="Athena engine version 3"
                ),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{bucket.bucket_name}/{archive_layout.ATHENA_RESULTS_ROOT}",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_KMS", kms_key=key.key_arn
                    ),
                ),
            ),
        )
        self.workgroup_name = self.workgroup.ref
        self.named_queries = []
        for query in queries:
            named = athena.CfnNamedQuery(
                self,
                f"Query{''.join(part.title() for part in query.name.split('-'))}",
                database=database_name,
                work_group=self.workgroup.ref,
                name=query.name,
                description=query.description[:1024],
                query_string=query.sql,
            )
            self.named_queries.append(named)
