"""The Glue catalog over the archive: one table of the audit log as Firehose writes it and one of the findings,
both with partition projection (no crawler, no MSCK REPAIR, no partitions to register).

- `audit_raw`: the CloudWatch Logs subscription envelopes, one per line (Firehose appends the newline), GZIP; one
  row per envelope, its `logevents` unnested by the queries (`eksight.queries`) into one row per audit event.
- `findings`: every finding of every severity as JSON lines, written by the detector under `findings/`
  (`archive_layout.findings_key`: partitioned by hour only, since account/region/cluster are columns of a finding).

Columns and partitions follow the query library's table contract (`eksight.queries.sources`). account, region and
cluster are `enum` projections of this deployment's values, so a query without those filters still works (it
enumerates them) and a new cluster only needs a redeploy; year/month/day/hour are zero-padded integers. The hour is
Firehose's arrival hour (UTC), not event time: the queries widen their partition window accordingly.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws
from aws_cdk import aws_glue as glue
from aws_cdk import aws_s3 as s3
from constructs import Construct

from eksight.core import archive_layout
from eksight.queries import sources  # the table contract the library's Athena renderings are written against

FIRST_YEAR = 2024  # projection range start; queries of older hours return nothing (no error)
LAST_YEAR = 2099

JSON_SERDE = glue.CfnTable.SerdeInfoProperty(
    serialization_library="org.openx.data.jsonserde.JsonSerDe",
    # A malformed line (a hostile or truncated record) is skipped, not fatal to the query; the detector
    # quarantines the same record with its reason.
    parameters={"ignore.malformed.json": "true", "case.insensitive": "true"},
)


def projection(partitions: Sequence[tuple[str, str]], enums: dict[str, str]) -> dict[str, str]:
    """Table parameters for partition projection: `enums` (column → comma-separated values) for the string
    partitions, zero-padded integer ranges for the time partitions."""
    parameters = {"projection.enabled": "true"}
    for column, value in enums.items():
        parameters[f"projection.{column}.type"] = "enum"
        parameters[f"projection.{column}.values"] = value
    ranges = {"year": (FIRST_YEAR, LAST_YEAR), "month": (1, 12), "day": (1, 31), "hour": (0, 23)}
    for column, (low, high) in ((c, ranges[c]) for c, _ in partitions if c in ranges):
        parameters[f"projection.{column}.type"] = "integer"
        parameters[f"projection.{column}.range"] = f"{low},{high}"
        if column != "year":
            parameters[f"projection.{column}.digits"] = "2"  # hour=03, never hour=3
    return parameters


def location_template(bucket_name: str, root: str, partitions: Sequence[tuple[str, str]]) -> str:
    # ${column} placeholders must reach Glue untouched (no Fn::Sub here).
    return f"s3://{bucket_name}/{root}" + "".join(f"{column}=${{{column}}}/" for column, _ in partitions)


class AuditCatalog(Construct):
    """A Glue database with the `audit_raw` and `findings` tables over `bucket`."""

    def __init__(self, scope: Construct, construct_id: str, *, bucket: s3.IBucket, clusters: Sequence[str]) -> None:
        super().__init__(scope, construct_id)
        # Athena wants lower-case names without hyphens, and the named queries embed the name: derived from the
        # construct path (unique per stack), never chosen by hand.
        self.database_name = f"eksight_{self.node.addr[:16]}"
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=Aws.ACCOUNT_ID,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.database_name,
                description="eksight: EKS audit archive and findings (partition projection; query with the "
                "eksight workgroup's named queries or `eksight hunt --athena`)",
            ),
        )
        enums = {"account": Aws.ACCOUNT_ID, "region": Aws.REGION, "cluster": ",".join(clusters)}
        self.audit_table = self._table(
            sources.AUDIT_RAW_TABLE,
            bucket,
            archive_layout.AUDIT_ROOT,
            sources.AUDIT_RAW_COLUMNS,
            sources.AUDIT_RAW_PARTITIONS,
            enums,
            "EKS audit log as archived: CloudWatch Logs envelopes, one per line; unnest logevents for events",
        )
        self.findings_table = self._table(
            sources.FINDINGS_TABLE,
            bucket,
            archive_layout.FINDINGS_ROOT,
            [(name, hive) for name, hive, _ in sources.FINDINGS_COLUMNS],
            sources.FINDINGS_PARTITIONS,
            {},
            "eksight findings of every severity; one row per finding per archive object (keep each id's latest)",
        )

    def _table(
        self,
        name: str,
        bucket: s3.IBucket,
        root: str,
        columns: Sequence[tuple[str, str]],
        partitions: Sequence[tuple[str, str]],
        enums: dict[str, str],
        description: str,
    ) -> glue.CfnTable:
        table = glue.CfnTable(
            self,
            name.title().replace("_", ""),
            catalog_id=Aws.ACCOUNT_ID,
            database_name=self.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=name,
                description=description,
                table_type="EXTERNAL_TABLE",
                parameters={
                    "classification": "json",
                    "compressionType": "gzip",
                    **projection(partitions, enums),
                    "storage.location.template": location_template(bucket.bucket_name, root, partitions),
                },
                partition_keys=[glue.CfnTable.ColumnProperty(name=column, type=kind) for column, kind in partitions],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    location=f"s3://{bucket.bucket_name}/{root}",
                    input_format="org.apache.hadoop.mapred.TextInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                    serde_info=JSON_SERDE,
                    columns=[glue.CfnTable.ColumnProperty(name=column, type=kind) for column, kind in columns],
                ),
            ),
        )
        table.node.add_dependency(self.database)
        return table
