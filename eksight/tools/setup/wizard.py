"""`eksight ui`: a local web wizard that writes the deployment config and a CloudShell bundle.

A stdlib `ThreadingHTTPServer` on 127.0.0.1 only. The page (eksight/tools/setup/static/, no frameworks, no CDN)
posts its answers as the user types to `/api/validate`, which maps them to a config with
`eksight.tools.setup.answers.answers_to_config` (the mapping `eksight generate` uses), runs `eksight.config.parse`
(the single validator) and maps every problem's field path to the form field that shows it.

Cross-site protection: every request must carry `Host: 127.0.0.1:PORT` (defeats DNS rebinding) and every
`/api/` request the per-server random token in the `X-Eksight-Token` header. The token travels in the URL's
fragment (never sent to a server, never in a Referer), so another page or another local user who can
reach the port cannot call the API. POSTs must be `application/json` from no or the same origin.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, get_args
from urllib.parse import urlsplit

import click

from eksight.config import (
    ConfigError,
    DeploymentConfig,
    DetectionOptions,
    RegionDeployment,
    RegionOptions,
    SeverityName,
    StorageClass,
    regions,
)
from eksight.core.eks import cluster_log_group
from eksight.tools.setup import bundle
from eksight.tools.setup.answers import Answers, answers_to_config

STATIC_DIR = Path(__file__).with_name("static")
TOKEN_HEADER = "X-Eksight-Token"
MAX_BODY_BYTES = 1024 * 1024
SYNTH_TIMEOUT_SECONDS = 300
DISCOVER_TIMEOUT_SECONDS = 5

PARTITION_LABELS = {"aws": "AWS (commercial)", "aws-cn": "AWS China", "aws-us-gov": "AWS GovCloud (US)"}

# The form's fields, by the config path they write (the page's `data-path` attributes use the same paths).
# Options common to all regions are written under `defaults`; region-bound resources under each region.
GLOBAL_FIELDS = (
    "name_prefix",
    "account",
    "tags",
    "detection.learning_days",
    "regions",
    "defaults.enable_audit_logging",
    "defaults.archive.versioning",
    "defaults.archive.expiration_days",
    "defaults.archive.transition_days",
    "defaults.archive.transition_storage_class",
    "defaults.archive.access_logging",
    "defaults.encryption.key_rotation_period_days",
    "defaults.encryption.key_deletion_window_days",
    "defaults.delivery.buffering_interval_seconds",
    "defaults.delivery.buffering_size_mib",
    "defaults.delivery.existing_role_arn",
    "defaults.subscription.existing_role_arn",
    "defaults.subscription.filter_pattern",
    "defaults.findings.securityhub.enabled",
    "defaults.findings.securityhub.min_severity",
    "defaults.findings.notifications.email",
    "defaults.findings.notifications.min_severity",
    "defaults.findings.central_bus_arn",
)
REGION_FIELDS = (
    "clusters",
    "archive.existing_bucket_arn",
    "encryption.existing_kms_key_arn",
    "findings.notifications.sns_topic_arn",
)
FORM_LEVEL = "(form)"  # problems no single field owns (shown in the summary only)


# --- validation and field mapping -----------------------------------------------------------------------


def form_field(path: str, config: dict[str, Any] | None = None) -> str:
    """The form field (its `data-path`) that should show a problem reported at config `path`.

    `regions.R` itself is the region's picker; a region's option that the form sets for all regions maps to
    its `defaults.` field; object-level problems go to the field the message is about.
    """
    parts = path.split(".")
    if parts[0] == "regions" and len(parts) >= 2:
        region, rest = parts[1], parts[2:]
        regions_raw = (config or {}).get("regions")
        region_entry = regions_raw.get(region) if isinstance(regions_raw, dict) else None
        for size in range(len(rest), 0, -1):
            sub = ".".join(rest[:size])
            if sub in REGION_FIELDS:
                return f"regions.{region}.{sub}"
            if f"defaults.{sub}" in GLOBAL_FIELDS:
                return f"defaults.{sub}"
            owner = _object_owner(sub, region_entry, region)
            if owner:
                return owner
        return f"regions.{region}"
    if parts[0] == "defaults":
        for size in range(len(parts), 1, -1):
            candidate = ".".join(parts[:size])
            if candidate in GLOBAL_FIELDS:
                return candidate
            owner = _object_owner(".".join(parts[1:size]), None, None)
            if owner:
                return owner
        return FORM_LEVEL
    for size in range(len(parts), 0, -1):
        candidate = ".".join(parts[:size])
        if candidate in GLOBAL_FIELDS:
            return candidate
    return FORM_LEVEL


def _object_owner(sub: str, region_entry: Any, region: str | None) -> str | None:
    """Problems raised by a whole options object (its model validator) → the field they are about."""
    if sub == "archive":
        brought = (
            isinstance(region_entry, dict)
            and isinstance(region_entry.get("archive"), dict)
            and region_entry["archive"].get("existing_bucket_arn")
        )
        return f"regions.{region}.archive.existing_bucket_arn" if brought else "defaults.archive.transition_days"
    if sub == "findings.notifications":
        return (
            f"regions.{region}.findings.notifications.sns_topic_arn"
            if region
            else "defaults.findings.notifications.email"
        )
    return None


def config_from(body: dict[str, Any]) -> dict[str, Any]:
    """The draft config of a request: `{"answers": Answers.to_dict()}` (the page) or `{"config": {...}}`.
    Raises ValueError when neither is well formed."""
    if "answers" in body:
        try:
            return answers_to_config(Answers.from_dict(body["answers"]))
        except (TypeError, AttributeError, ValueError) as error:
            raise ValueError(f"malformed answers: {error}") from None
    config = body.get("config")
    if not isinstance(config, dict):
        raise ValueError('send {"answers": {...}} or {"config": {...}}')
    return config


def check(config: Any) -> tuple[DeploymentConfig | None, list[dict[str, str]]]:
    """(the parsed config or None, problems as {path, field, message}, one per field and message)."""
    try:
        return bundle.validate(config), []
    except ConfigError as error:
        problems: list[dict[str, str]] = []
        seen: set[tuple[str, str]] = set()
        raw = config if isinstance(config, dict) else None
        for path, message in error.problems:
            field = form_field(path, raw)
            if (field, message) not in seen:
                seen.add((field, message))
                problems.append({"path": path, "field": field, "message": message})
        return None, problems


# --- what will be created --------------------------------------------------------------------------------


def resource_summary(deployment: DeploymentConfig) -> list[dict[str, Any]]:
    """Per region, the stacks and the resources each creates, derived from the parsed config (instant; the
    "Preview resources" button synthesizes the real templates)."""
    return [
        {
            "region": d.region,
            "partition": d.partition,
            "stacks": [
                {"name": d.stack_name, "resources": _ingestion_resources(d)},
                {"name": d.detection_stack_name, "resources": _detection_resources(d)},
            ],
        }
        for d in deployment.regions
    ]


def _ingestion_resources(d: RegionDeployment) -> list[str]:
    archive, encryption, delivery = d.options.archive, d.options.encryption, d.options.delivery
    out = []
    if encryption.existing_kms_key_arn:
        out.append(f"KMS key: existing {encryption.existing_kms_key_arn}")
    else:
        out.append(
            f"KMS key: new, rotation every {encryption.key_rotation_period_days} d, deletion window "
            f"{encryption.key_deletion_window_days} d"
        )
    if archive.existing_bucket_arn:
        out.append(
            f"S3 archive bucket: existing {archive.existing_bucket_arn.rsplit(':', 1)[-1]} (settings kept; "
            "an ObjectCreated notification is added)"
        )
    else:
        parts = [
            "new, KMS",
            "versioned" if archive.versioning else "unversioned",
            f"expire after {archive.expiration_days} d",
        ]
        if archive.transition_days is not None:
            parts.append(f"{archive.transition_storage_class} after {archive.transition_days} d")
        out.append("S3 archive bucket: " + ", ".join(parts))
        if archive.access_logging:
            out.append("S3 access-log bucket")
    out.append("SQS queue of new archive objects + dead-letter queue")
    out.append(
        "IAM role for Firehose: "
        + (f"existing {delivery.existing_role_arn}" if delivery.existing_role_arn else "new, least privilege")
    )
    role = d.options.subscription.existing_role_arn
    out.append("IAM role for CloudWatch Logs: " + (f"existing {role}" if role else "new, least privilege"))
    pattern = "custom filter pattern" if d.options.subscription.filter_pattern else "default filter pattern"
    for cluster in d.clusters:
        out.append(
            f"Firehose stream ({delivery.buffering_interval_seconds} s / {delivery.buffering_size_mib} MiB) "
            f"+ subscription filter on {cluster_log_group(cluster)} ({pattern})"
        )
    out.append(f"CloudWatch log group of delivery errors ({delivery.error_log_retention_days} d)")
    if d.options.enable_audit_logging:
        out.append(f"custom resource turning on EKS audit logging for {', '.join(d.clusters)}")
    return out


def _detection_resources(d: RegionDeployment) -> list[str]:
    detector, findings = d.detector, d.findings
    reserved = f", {detector.reserved_concurrency} reserved" if detector.reserved_concurrency else ""
    out = [
        f"Lambda detector: {detector.memory_mb} MB, {detector.timeout_seconds} s{reserved}, baselines learn "
        f"{d.detection.learning_days} d",
        "DynamoDB table of behavioural baselines (KMS, point-in-time recovery)",
        f"EventBridge findings bus + archive ({findings.archive_retention_days} d)",
    ]
    if findings.securityhub.enabled:
        out.append(f"Lambda forwarding {findings.securityhub.min_severity}+ findings to Security Hub")
    notifications = findings.notifications
    if notifications.sns_topic_arn:
        out.append(f"alerts ({notifications.min_severity}+) to existing SNS topic {notifications.sns_topic_arn}")
    elif notifications.email:
        out.append(
            f"SNS topic (KMS) for alerts ({notifications.min_severity}+), email to {', '.join(notifications.email)}"
        )
    if findings.central_bus_arn:
        out.append(f"EventBridge rule forwarding every finding to {findings.central_bus_arn}")
    out.append("CloudWatch alarms + dashboard")
    return out


_SYNTH_SCRIPT = """
import sys
import aws_cdk as cdk
from stacks.app_builder import build_app, cdk_json_context
app = cdk.App(context=cdk_json_context(), outdir=sys.argv[2])
build_app(app, sys.argv[1])
app.synth()
"""


def synthesize_plans(config: dict[str, Any], root: Path = bundle.PROJECT_ROOT) -> list[dict[str, Any]]:
    """Synthesizes the config with the real CDK app (in a subprocess; offline, ~15 s) and summarises every
    stack with eksight.tools.plan. Raises RuntimeError with the synth's own message when it fails."""
    from eksight.tools import plan

    with tempfile.TemporaryDirectory(prefix="eksight-preview-") as work:
        config_path, outdir = Path(work) / bundle.CONFIG_NAME, Path(work) / "cdk.out"
        config_path.write_text(json.dumps(config), encoding="utf-8")
        env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
        try:
            result = subprocess.run(
                [sys.executable, "-c", _SYNTH_SCRIPT, str(config_path), str(outdir)],
                cwd=root,
                env=env,
                capture_output=True,
                text=True,
                timeout=SYNTH_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"synthesis took longer than {SYNTH_TIMEOUT_SECONDS} s") from None
        if result.returncode != 0:
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            raise RuntimeError("\n".join(lines[-15:]) or f"synthesis failed (exit {result.returncode})")
        return [
            {
                "name": p.name,
                "environment": p.environment,
                "clusters": p.clusters,
                "lines": [list(line) for line in p.lines],
                "resources": sum(p.resource_counts.values()),
                "resource_types": dict(sorted(p.resource_counts.items())),
            }
            for p in sorted(plan.load_plans(outdir), key=_region_then_kind)
        ]


def _region_then_kind(stack: Any) -> tuple[str, bool]:
    """Per region, the ingestion stack before the detection stack that plugs into it."""
    for kind in ("-ingestion-", "-detection-"):
        if kind in stack.name:
            return stack.name.split(kind, 1)[1], kind == "-detection-"
    return stack.name, False


# --- cluster discovery -------------------------------------------------------------------------------------


def discover_clusters(region: str) -> dict[str, Any]:
    """eks:ListClusters in `region` with whatever credentials this computer has; a message when they fail."""
    import boto3
    import botocore.exceptions as errors
    from botocore.config import Config

    try:
        # A new session each time: credentials set up after the wizard started (aws sso login…) count.
        client = boto3.session.Session().client(
            "eks",
            region_name=region,
            config=Config(
                connect_timeout=DISCOVER_TIMEOUT_SECONDS,
                read_timeout=DISCOVER_TIMEOUT_SECONDS,
                retries={"max_attempts": 1},
            ),
        )
        names = [name for page in client.get_paginator("list_clusters").paginate() for name in page["clusters"]]
    except (errors.NoCredentialsError, errors.PartialCredentialsError):
        return {
            "ok": False,
            "message": "No AWS credentials on this computer, so clusters cannot be listed. Type "
            "the cluster names instead, or set up credentials (aws configure, "
            "AWS_PROFILE or aws sso login) and try again.",
        }
    except errors.ClientError as error:
        code = error.response.get("Error", {}).get("Code", "error")
        text = error.response.get("Error", {}).get("Message", "")
        return {
            "ok": False,
            "message": f"AWS refused eks:ListClusters in {region} ({code}: {text}). Type the cluster names instead.",
        }
    except (errors.EndpointConnectionError, errors.ConnectTimeoutError, errors.ReadTimeoutError):
        return {
            "ok": False,
            "message": f"Could not reach Amazon EKS in {region} from this computer. Type the cluster names instead.",
        }
    except errors.BotoCoreError as error:
        return {
            "ok": False,
            "message": f"Could not list the clusters in {region}: {error}. Type the cluster names instead.",
        }
    return {"ok": True, "clusters": sorted(names)}


# --- static data for the page ---------------------------------------------------------------------------


def region_catalog() -> list[dict[str, Any]]:
    """Every region where EKS runs, grouped by partition, with the region's description from botocore."""
    import botocore.session

    described: dict[str, str] = {}
    for partition in botocore.session.get_session().get_data("endpoints")["partitions"]:
        described.update({name: entry.get("description", "") for name, entry in partition["regions"].items()})
    by_partition: dict[str, list[dict[str, str]]] = {p: [] for p in regions.PARTITIONS}
    for name, partition in sorted(regions.eks_regions().items()):
        by_partition[partition].append({"name": name, "description": described.get(name, "")})
    return [
        {"partition": p, "label": PARTITION_LABELS.get(p, p), "regions": rs} for p, rs in by_partition.items() if rs
    ]


def page_meta() -> dict[str, Any]:
    defaults = RegionOptions().model_dump(mode="json")
    defaults["learning_days"] = DetectionOptions().learning_days
    return {
        "regions": region_catalog(),
        "defaults": defaults,
        "severities": list(get_args(SeverityName)),
        "storage_classes": list(get_args(StorageClass)),
        "global_fields": list(GLOBAL_FIELDS),
        "region_fields": list(REGION_FIELDS),
        "bundle_name": bundle.BUNDLE_NAME,
        "config_name": bundle.CONFIG_NAME,
        "command": bundle.CLOUDSHELL_COMMAND,
    }


# --- the server ------------------------------------------------------------------------------------------------

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class WizardServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int = 0, *, root: Path = bundle.PROJECT_ROOT, log_requests: bool = False) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.token = secrets.token_urlsafe(32)
        self.root = root
        self.log_requests = log_requests
        self.synth_lock = threading.Lock()
        self.static = {
            path.name: path for path in STATIC_DIR.iterdir() if path.is_file() and path.suffix in _CONTENT_TYPES
        }

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def origin(self) -> str:
        return f"http://{self.host}"

    @property
    def url(self) -> str:
        """The address to open: the token rides in the fragment, which browsers never send anywhere."""
        return f"{self.origin}/#token={self.token}"


class _Handler(BaseHTTPRequestHandler):
    server: WizardServer
    protocol_version = "HTTP/1.1"
    server_version = "eksight-wizard"
    sys_version = ""

    # ---- plumbing ----
    def log_message(self, format: str, *args: Any) -> None:
        if self.server.log_requests:
            super().log_message(format, *args)

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in {**_SECURITY_HEADERS, **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _error(self, status: HTTPStatus, message: str) -> None:
        self._json(status, {"ok": False, "error": message})

    def _host_ok(self) -> bool:
        if self.headers.get("Host") != self.server.host:
            self._error(
                HTTPStatus.MISDIRECTED_REQUEST,
                f"this server only answers requests for {self.server.host} (Host header)",
            )
            return False
        return True

    def _api_allowed(self) -> bool:
        token = self.headers.get(TOKEN_HEADER, "")
        if not hmac.compare_digest(token.encode(), self.server.token.encode()):
            self._error(HTTPStatus.FORBIDDEN, f"missing or wrong {TOKEN_HEADER}: open the URL printed by eksight ui")
            return False
        origin = self.headers.get("Origin")
        if origin is not None and origin != self.server.origin:
            self._error(HTTPStatus.FORBIDDEN, "cross-origin request refused")
            return False
        if self.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            self._error(HTTPStatus.FORBIDDEN, "cross-site request refused")
            return False
        return True

    def _body(self) -> Any:
        """The JSON body, or None after answering with an error."""
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            self._error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send Content-Type: application/json")
            return None
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._error(HTTPStatus.LENGTH_REQUIRED, "Content-Length required")
            return None
        if int(length) > MAX_BODY_BYTES:
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body larger than {MAX_BODY_BYTES} bytes")
            return None
        try:
            body = json.loads(self.rfile.read(int(length)) or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            self._error(HTTPStatus.BAD_REQUEST, "body is not JSON")
            return None
        if not isinstance(body, dict):
            self._error(HTTPStatus.BAD_REQUEST, "body must be a JSON object")
            return None
        return body

    # ---- routes ----
    def do_GET(self) -> None:
        if not self._host_ok():
            return
        path = urlsplit(self.path).path
        if path in ("/", "/index.html"):
            self._static("index.html")
        elif path.startswith("/static/") and path.removeprefix("/static/") in self.server.static:
            self._static(path.removeprefix("/static/"))
        elif path == "/api/meta":
            if self._api_allowed():
                self._json(HTTPStatus.OK, page_meta())
        else:
            self._error(HTTPStatus.NOT_FOUND, "not found")

    do_HEAD = do_GET

    def do_POST(self) -> None:
        if not self._host_ok() or not self._api_allowed():
            return
        path = urlsplit(self.path).path
        config_routes = {"/api/validate": self._validate, "/api/bundle": self._bundle, "/api/preview": self._preview}
        if path not in config_routes and path != "/api/discover":
            self._error(HTTPStatus.NOT_FOUND, "not found")
            return
        body = self._body()
        if body is None:
            return
        if path == "/api/discover":
            self._discover(body)
            return
        try:
            config = config_from(body)
        except ValueError as error:
            self._error(HTTPStatus.BAD_REQUEST, str(error))
            return
        config_routes[path](config)

    def _static(self, name: str) -> None:
        path = self.server.static[name]
        self._send(HTTPStatus.OK, path.read_bytes(), _CONTENT_TYPES[path.suffix])

    def _validate(self, config: dict[str, Any]) -> None:
        deployment, problems = check(config)
        payload: dict[str, Any] = {
            "ok": deployment is not None,
            "problems": problems,
            "config": config,
            "config_text": bundle.config_text(config),
        }
        if deployment is not None:
            payload["resources"] = resource_summary(deployment)
        self._json(HTTPStatus.OK, payload)

    def _bundle(self, config: dict[str, Any]) -> None:
        deployment, problems = check(config)
        if deployment is None:
            self._json(HTTPStatus.UNPROCESSABLE_ENTITY, {"ok": False, "problems": problems})
            return
        try:
            data = bundle.build_bundle(config, self.server.root)
        except bundle.BundleError as error:
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, str(error))
            return
        self._send(
            HTTPStatus.OK,
            data,
            "application/gzip",
            {"Content-Disposition": f'attachment; filename="{bundle.BUNDLE_NAME}"'},
        )

    def _preview(self, config: dict[str, Any]) -> None:
        deployment, problems = check(config)
        if deployment is None:
            self._json(HTTPStatus.UNPROCESSABLE_ENTITY, {"ok": False, "problems": problems})
            return
        if not self.server.synth_lock.acquire(blocking=False):
            self._error(HTTPStatus.CONFLICT, "a preview is already being synthesized; wait for it")
            return
        started = time.monotonic()
        try:
            stacks = synthesize_plans(config, self.server.root)
        except RuntimeError as error:
            self._json(HTTPStatus.OK, {"ok": False, "message": str(error)})
            return
        finally:
            self.server.synth_lock.release()
        self._json(HTTPStatus.OK, {"ok": True, "stacks": stacks, "seconds": round(time.monotonic() - started, 1)})

    def _discover(self, body: dict[str, Any]) -> None:
        region = body.get("region")
        if not isinstance(region, str) or region not in regions.eks_regions():
            self._error(HTTPStatus.BAD_REQUEST, "choose a region first")
            return
        self._json(HTTPStatus.OK, discover_clusters(region))


@click.command()
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="Port on 127.0.0.1 (0: a free one)."
)
@click.option("--log-requests", is_flag=True, help="Log every request to stderr.")
def ui(port: int, log_requests: bool) -> None:
    """A local web wizard: pick regions and clusters, set options, and download the config or a CloudShell
    bundle. Listens on 127.0.0.1 only and opens nothing by itself: open the printed URL. Ctrl-C stops it."""
    try:
        server = WizardServer(port, log_requests=log_requests)
    except OSError as error:
        raise click.ClickException(
            f"cannot listen on 127.0.0.1:{port} ({error.strerror}); use --port 0 for a free port"
        ) from None
    click.echo(f"eksight wizard: {server.url}")
    click.echo("Open that address in your browser (it carries this session's key). Ctrl-C stops the wizard.")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("\neksight wizard stopped")
    finally:
        server.server_close()
