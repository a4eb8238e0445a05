"""The only places eksight talks to AWS: small adapters around clients the caller creates and injects.

- `eventbridge.FindingPublisher`: findings → PutEvents (≤ 10 entries, ≤ 256 KB per request), failed entries retried.
- `s3.S3ObjectReader` / `s3.QuarantineWriter`: stream archive objects in; write quarantined records out.
- `securityhub.SecurityHubImporter`: findings → ASFF → BatchImportFindings (≤ 100 per call), failures retried.

No adapter creates a client or imports boto3: the Lambda handlers create clients once per container from the
standard environment (so AWS_ENDPOINT_URL reaches an emulator), tests pass moto-backed or stubbed clients.
"""

# What the Lambda functions' X-Ray tracer (Powertools `Tracer(patch_modules=...)`) patches: the AWS calls, which all
# go through botocore. Its default patches every library it can import (http.client, sqlite3...): raw HTTP
# subsegments that repeat botocore's, and import time at every cold start.
TRACED_MODULES = ("botocore",)
