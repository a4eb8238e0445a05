"""`eksight ui`: a local web wizard that writes the deployment config and a CloudShell bundle.

This module is the HTTP server: a stdlib `ThreadingHTTPServer` on 127.0.0.1 only, serving the page
(eksight/tools/setup/static/, no frameworks, no CDN) and its JSON API. What the API answers (form ↔ config,
validation messages, the synthesized preview, cluster discovery) is eksight.tools.setup.web_form. Started with
a findings source, it also serves the findings console (/console, GETs under /api/console/: eksight.tools.console)
behind the same Host and token checks.

Cross-site protection: every request must carry `Host: 127.0.0.1:PORT` (defeats DNS rebinding) and every
`/api/` request the per-server random token in the `X-Eksight-Token` header. The token travels in the URL's
fragment (never sent to a server, never in a Referer), so another page or another local user who can
reach the port cannot call the API. POSTs must be `application/json` from no or the same origin, at most
MAX_BODY_BYTES long and MAX_JSON_DEPTH deep; a client that stalls for READ_TIMEOUT_SECONDS is dropped.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
import traceback
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click

from eksight.config import regions
from eksight.core.untrusted import nests_deeper_than
from eksight.tools import PROJECT_ROOT
from eksight.tools.console import API_PREFIX as CONSOLE_API
from eksight.tools.setup import bundle, web_form

if TYPE_CHECKING:  # the console pulls in DuckDB: imported only when `eksight ui` opens findings
    from eksight.tools.console.api import Console
    from eksight.tools.console.source import FindingsSource

STATIC_DIR = Path(__file__).with_name("static")
TOKEN_HEADER = "X-Eksight-Token"
MAX_BODY_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 32  # the page's answers nest 5 deep, a config about 8
READ_TIMEOUT_SECONDS = 10  # per socket read: a client that stops sending mid-request is dropped

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
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


class BadRequest(ValueError):
    """The request body cannot be used; the message says why (answered with 400)."""


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """A request body as a JSON object. Nesting is measured before json.loads, whose recursion a deep enough
    body would exhaust; numbers too long for int() and bad UTF-8 are refused, not raised."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("body is not UTF-8") from None
    if nests_deeper_than(raw, MAX_JSON_DEPTH):  # the decoder's own linear check (eksight.core.untrusted)
        raise BadRequest(f"body nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        body = json.loads(text or "null")
    except ValueError:  # JSONDecodeError, and int() refusing a number of thousands of digits
        raise BadRequest("body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    return body


class WizardServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        port: int = 0,
        *,
        root: Path = PROJECT_ROOT,
        log_requests: bool = False,
        read_timeout: float = READ_TIMEOUT_SECONDS,
        console: Console | None = None,
    ) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.token = secrets.token_urlsafe(32)
        self.root = root
        self.log_requests = log_requests
        self.read_timeout = read_timeout
        self.synth_lock = threading.Lock()
        self.console = console  # the findings console (/console), when started with a findings source
        self.static = {  # by path below static/, e.g. "vendor/uPlot.iife.min.js"
            path.relative_to(STATIC_DIR).as_posix(): path
            for path in STATIC_DIR.rglob("*")
            if path.is_file() and path.suffix in _CONTENT_TYPES
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

    @property
    def console_url(self) -> str:
        return f"{self.origin}/console#token={self.token}"


class _Handler(BaseHTTPRequestHandler):
    server: WizardServer
    protocol_version = "HTTP/1.1"
    server_version = "eksight-wizard"
    sys_version = ""

    # ---- plumbing ----
    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.read_timeout)  # each read of a request waits this long at most

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.log_requests:
            super().log_message(format, *args)

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
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

    def _body(self) -> dict[str, Any] | None:
        """The JSON object sent, or None after answering with an error."""
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            self._error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send Content-Type: application/json")
            return None
        length = self.headers.get("Content-Length")
        if length is None:
            self._error(HTTPStatus.LENGTH_REQUIRED, "Content-Length required")
            return None
        if not (length.isascii() and length.isdigit()):  # str.isdigit() alone accepts "²", which int() refuses
            self.close_connection = True  # where this body ends is unknown
            self._error(HTTPStatus.BAD_REQUEST, "Content-Length must be a number of bytes")
            return None
        if len(length.lstrip("0")) > len(str(MAX_BODY_BYTES)) or int(length) > MAX_BODY_BYTES:
            self.close_connection = True  # the body is not read
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body larger than {MAX_BODY_BYTES} bytes")
            return None
        try:
            raw = self.rfile.read(int(length))
        except TimeoutError:
            self.close_connection = True
            self._error(HTTPStatus.REQUEST_TIMEOUT, f"body not received (waited {self.server.read_timeout:g} s)")
            return None
        if len(raw) < int(length):  # the client closed its side early
            self.close_connection = True
            self._error(HTTPStatus.BAD_REQUEST, "body shorter than its Content-Length")
            return None
        try:
            return parse_json_object(raw)
        except BadRequest as error:
            self._error(HTTPStatus.BAD_REQUEST, str(error))
            return None

    # ---- routes ----
    def do_GET(self) -> None:
        if not self._host_ok():
            return
        url = urlsplit(self.path)
        path = url.path
        if path in ("/", "/index.html"):
            self._static("index.html")
        elif path == "/console" and self.server.console is not None:
            self._static("console.html")
        elif path.startswith(CONSOLE_API) and self.server.console is not None:
            if self._api_allowed():
                self._console(path, url.query)
        elif path.startswith("/static/") and path.removeprefix("/static/") in self.server.static:
            self._static(path.removeprefix("/static/"))
        elif path == "/api/meta":
            if self._api_allowed():
                self._json(HTTPStatus.OK, web_form.page_meta())
        else:
            self._error(HTTPStatus.NOT_FOUND, "not found")

    do_HEAD = do_GET

    def do_POST(self) -> None:
        if not self._host_ok() or not self._api_allowed():
            return
        routes: dict[str, Callable[[dict[str, Any]], None]] = {
            "/api/validate": self._validate,
            "/api/bundle": self._bundle,
            "/api/preview": self._preview,
            "/api/discover": self._discover,
        }
        route = routes.get(urlsplit(self.path).path)
        if route is None:
            self._error(HTTPStatus.NOT_FOUND, "not found")
            return
        body = self._body()
        if body is None:
            return
        try:
            route(body)
        except Exception as error:  # a bug answers 500 (and is printed) instead of dropping the connection
            traceback.print_exc()
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error: {type(error).__name__}: {error}")

    def _console(self, path: str, query: str) -> None:
        assert self.server.console is not None
        try:
            status, payload = self.server.console.handle(path, query)
        except Exception as error:  # a bug answers 500 (and is printed) instead of dropping the connection
            traceback.print_exc()
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error: {type(error).__name__}: {error}")
            return
        self._send(status, json.dumps(payload, default=str).encode(), "application/json")

    def _static(self, name: str) -> None:
        path = self.server.static[name]
        self._send(HTTPStatus.OK, path.read_bytes(), _CONTENT_TYPES[path.suffix])

    def _config(self, body: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return web_form.config_from(body)
        except ValueError as error:
            self._error(HTTPStatus.BAD_REQUEST, str(error))
            return None

    def _validate(self, body: dict[str, Any]) -> None:
        config = self._config(body)
        if config is None:
            return
        deployment, problems = web_form.check(config)
        payload: dict[str, Any] = {
            "ok": deployment is not None,
            "problems": problems,
            "config": config,
            "config_text": bundle.config_text(config),
        }
        if deployment is not None:
            payload["stacks"] = web_form.stack_names(deployment)
        self._json(HTTPStatus.OK, payload)

    def _bundle(self, body: dict[str, Any]) -> None:
        config = self._config(body)
        if config is None:
            return
        deployment, problems = web_form.check(config)
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

    def _preview(self, body: dict[str, Any]) -> None:
        config = self._config(body)
        if config is None:
            return
        deployment, problems = web_form.check(config)
        if deployment is None:
            self._json(HTTPStatus.UNPROCESSABLE_ENTITY, {"ok": False, "problems": problems})
            return
        if not self.server.synth_lock.acquire(blocking=False):
            self._error(HTTPStatus.CONFLICT, "a preview is already being synthesized; wait for it")
            return
        try:
            result = web_form.preview(config)
        finally:
            self.server.synth_lock.release()
        self._json(HTTPStatus.OK, result)

    def _discover(self, body: dict[str, Any]) -> None:
        region = body.get("region")
        if not isinstance(region, str) or region not in regions.eks_regions():
            self._error(HTTPStatus.BAD_REQUEST, "choose a region first")
            return
        self._json(HTTPStatus.OK, web_form.discover_clusters(region))


@click.command()
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="Port on 127.0.0.1 (0: a free one)."
)
@click.option("--log-requests", is_flag=True, help="Log every request to stderr.")
@click.option(
    "--findings",
    "findings_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Findings JSON lines (eksight replay -o) to open in the findings console (/console).",
)
@click.option(
    "--archive",
    "archive_paths",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Audit events for the console's evidence and timelines: archive objects, eksight simulate's cwl/, "
    "JSON lines audit files or directories (repeatable).",
)
@click.option("--cluster", default="", help="Cluster name of plain JSON lines audit events given with --archive.")
@click.option(
    "--security-hub",
    is_flag=True,
    help="Open eksight's active findings in Security Hub (HIGH and above; no anomaly details) in the console.",
)
@click.option(
    "--athena",
    is_flag=True,
    help="Open the deployed findings table (detection stack's Athena workgroup; no descriptions or anomaly details).",
)
@click.option("--days", type=click.IntRange(1, 366), default=30, show_default=True, help="Days of findings (--athena).")
@click.option(
    "--config", "config_path", type=click.Path(path_type=Path), help="Deployment config (--athena: stack prefix)."
)
@click.option(
    "--region", help="Region of Security Hub or the detection stack. Default: the config's or your profile's."
)
def ui(
    port: int,
    log_requests: bool,
    findings_file: Path | None,
    archive_paths: tuple[Path, ...],
    cluster: str,
    security_hub: bool,
    athena: bool,
    days: int,
    config_path: Path | None,
    region: str | None,
) -> None:
    """A local web wizard: pick regions and clusters, set options, and download the config or a CloudShell
    bundle. With a findings source (--findings, --security-hub or --athena), also the findings console: filter
    findings, open one to see its evidence events, the principal's timeline and plots. Listens on 127.0.0.1
    only and opens nothing by itself: open the printed URL. Ctrl-C stops it."""
    sources = (findings_file is not None) + security_hub + athena
    if sources > 1:
        raise click.UsageError("choose one findings source: --findings FILE, --security-hub or --athena")
    if archive_paths and not sources:
        raise click.UsageError("--archive goes with a findings source: --findings FILE, --security-hub or --athena")
    console = None
    if sources:
        from eksight.tools.console.api import Console
        from eksight.tools.console.archive import ArchiveIndex

        if athena:
            source = _athena_source(config_path, region, days)
        elif security_hub:
            source = _security_hub_source(region)
        else:
            source = _file_source(findings_file)
        console = Console(source, ArchiveIndex(archive_paths, cluster) if archive_paths else None)
        capped = f" (kept the newest {source.describe()['held']:,})" if source.capped else ""
        click.echo(f"eksight console: {source.read:,} findings from {source.name}{capped}")
    try:
        server = WizardServer(port, log_requests=log_requests, console=console)
    except OSError as error:
        raise click.ClickException(
            f"cannot listen on 127.0.0.1:{port} ({error.strerror}); use --port 0 for a free port"
        ) from None
    if console is not None:
        console.start()
        click.echo(f"eksight findings console: {server.console_url}")
    click.echo(f"eksight wizard: {server.url}")
    click.echo("Open that address in your browser (it carries this session's key). Ctrl-C stops the wizard.")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("\neksight wizard stopped")
    finally:
        server.server_close()


def _file_source(path: Path | None) -> FindingsSource:
    from eksight.tools.console import source

    assert path is not None
    return source.from_file(path)


def _security_hub_source(region: str | None) -> FindingsSource:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from eksight.tools.console.securityhub import from_security_hub

    region = region or boto3.session.Session().region_name
    if not region:
        raise click.UsageError("no region: pass --region or set AWS_REGION")
    try:
        return from_security_hub(boto3.client("securityhub", region_name=region), region)
    except (BotoCoreError, ClientError) as error:
        raise click.ClickException(f"cannot read Security Hub findings in {region}: {error}") from None


def _athena_source(config_path: Path | None, region: str | None, days: int) -> FindingsSource:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from eksight.adapters import athena
    from eksight.tools.console.athena import from_athena
    from eksight.tools.hunt.cli import deployed_athena  # the stack as `eksight hunt --athena` finds it

    region, target = deployed_athena(config_path, region)
    try:
        source, run = from_athena(boto3.client("athena", region_name=region), target, days=days)
    except (athena.AthenaError, BotoCoreError, ClientError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"athena: {run.bytes_scanned / 1e6:,.1f} MB scanned in {run.seconds:.1f}s, about ${run.dollars:.4f}")
    return source
