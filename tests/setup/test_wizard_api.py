"""`eksight ui`: the local server's protections, its validation and field mapping, the CloudShell bundle and
the deploy.sh it ships (shellcheck, --dry-run, and a real run against fake aws/npx/node/npm commands)."""

from __future__ import annotations

import http.client
import io
import json
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from eksight import config as config_module
from eksight.tools.setup import bundle, web_form, wizard
from eksight.tools.setup.answers import Answers, RegionAnswers
from tests.setup.system_tools import require

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "eksight" / "tools" / "setup" / "static"
ACCOUNT = "111122223333"
BUS = "arn:aws:events:us-east-1:999988887777:event-bus/security-findings"

# Two regions; eu-west-1 lets the stack turn audit logging on, us-east-1 brings its own bucket.
CONFIG: dict[str, Any] = {
    "name_prefix": "acme",
    "account": ACCOUNT,
    "defaults": {"findings": {"central_bus_arn": BUS}},
    "regions": {
        "us-east-1": {
            "clusters": ["prod-api", "staging"],
            "archive": {"existing_bucket_arn": "arn:aws:s3:::acme-audit"},
        },
        "eu-west-1": {"clusters": ["eu-prod"], "enable_audit_logging": True},
    },
}


# --- a running server ---------------------------------------------------------------------------------------


def serve(**options: Any) -> Iterator[wizard.WizardServer]:
    running = wizard.WizardServer(0, **options)
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    yield running
    running.shutdown()
    running.server_close()
    thread.join(timeout=5)


@pytest.fixture
def server() -> Iterator[wizard.WizardServer]:
    yield from serve()


@pytest.fixture
def impatient_server() -> Iterator[wizard.WizardServer]:
    """A server that drops a client after 1 s of silence (instead of 10 s)."""
    yield from serve(read_timeout=1)


def call(
    server: wizard.WizardServer,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = "",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request; token "" means the server's own token, None means no token header."""
    sent = {"Host": server.host}
    if token is not None:
        sent[wizard.TOKEN_HEADER] = token or server.token
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    sent.update(headers or {})
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    try:
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def post_json(server: wizard.WizardServer, path: str, body: Any) -> tuple[int, dict[str, Any]]:
    status, _, data = call(server, "POST", path, body)
    return status, json.loads(data)


def download_bundle(server: wizard.WizardServer, config: dict[str, Any]) -> tarfile.TarFile:
    status, headers, data = call(server, "POST", "/api/bundle", {"config": config})
    assert status == 200, data[:500]
    assert headers["content-type"] == "application/gzip"
    assert headers["content-disposition"] == 'attachment; filename="eksight-bundle.tar.gz"'
    return tarfile.open(fileobj=io.BytesIO(data), mode="r:gz")


# --- listening and protections --------------------------------------------------------------------------------


def test_listens_on_loopback_only_and_serves_the_page_with_a_strict_policy(server: wizard.WizardServer) -> None:
    assert server.server_address[0] == "127.0.0.1"
    assert server.url == f"http://127.0.0.1:{server.port}/#token={server.token}"
    status, headers, page = call(server, "GET", "/", token=None)
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b'src="/static/app.js"' in page and server.token.encode() not in page
    policy = headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
    assert call(server, "GET", "/static/app.js", token=None)[0] == 200
    for path in ("/static/../wizard.py", "/static/%2e%2e/wizard.py", "/eksight/config.py", "/static/missing.js"):
        assert call(server, "GET", path, token=None)[0] == 404, path


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:{port}", "localhost:{port}", "127.0.0.1", "127.0.0.1:1", "[::1]:{port}"]
)
def test_a_foreign_host_header_is_refused(server: wizard.WizardServer, host: str) -> None:
    """DNS rebinding: a page at evil.example resolving to 127.0.0.1 sends Host: evil.example:PORT."""
    wrong = {"Host": host.format(port=server.port)}
    assert call(server, "GET", "/", token=None, headers=wrong)[0] == 421
    assert call(server, "GET", "/api/meta", headers=wrong)[0] == 421
    status, _, body = call(server, "POST", "/api/validate", {"config": CONFIG}, headers=wrong)
    assert status == 421 and b"problems" not in body


def test_the_api_needs_the_session_token(server: wizard.WizardServer) -> None:
    assert call(server, "GET", "/api/meta", token=None)[0] == 403
    assert call(server, "GET", "/api/meta", token="not-the-token")[0] == 403
    assert call(server, "POST", "/api/validate", {"config": CONFIG}, token=None)[0] == 403
    assert call(server, "POST", "/api/bundle", {"config": CONFIG}, token=server.token[:-1])[0] == 403
    assert call(server, "POST", "/api/discover", {"region": "us-east-1"}, token=None)[0] == 403
    assert call(server, "GET", "/api/meta")[0] == 200
    assert call(server, "POST", "/api/validate", {"config": CONFIG})[0] == 200


def test_cross_origin_and_non_json_posts_are_refused(server: wizard.WizardServer) -> None:
    body = {"config": CONFIG}
    assert call(server, "POST", "/api/validate", body, headers={"Origin": "http://evil.example"})[0] == 403
    assert call(server, "POST", "/api/validate", body, headers={"Origin": "null"})[0] == 403
    assert call(server, "POST", "/api/validate", body, headers={"Sec-Fetch-Site": "cross-site"})[0] == 403
    assert call(server, "POST", "/api/validate", body, headers={"Origin": server.origin})[0] == 200
    # a "simple" request a form on another site could send without a CORS preflight
    assert call(server, "POST", "/api/validate", body, headers={"Content-Type": "text/plain"})[0] == 415
    assert (
        call(server, "POST", "/api/validate", body, headers={"Content-Type": "application/x-www-form-urlencoded"})[0]
        == 415
    )
    status, _, _ = call(
        server,
        "POST",
        "/api/validate",
        None,
        headers={"Content-Type": "application/json", "Content-Length": str(2 * 1024 * 1024)},
    )
    assert status == 413


# --- malformed and hostile requests: answered, never a crashed handler or a stuck thread ----------------------


def raw_request(server: wizard.WizardServer, content_length: bytes, body: bytes, *, close: bool = True) -> bytes:
    """POST /api/validate written byte by byte (http.client would refuse some of these headers); returns all the
    server sent until it closed the connection."""
    head = (
        (
            f"POST /api/validate HTTP/1.1\r\nHost: {server.host}\r\n{wizard.TOKEN_HEADER}: {server.token}\r\n"
            "Content-Type: application/json\r\n" + ("Connection: close\r\n" if close else "")
        ).encode()
        + b"Content-Length: "
        + content_length
        + b"\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as connection:
        connection.sendall(head + body)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    return received


def status_and_error(response: bytes) -> tuple[int, str]:
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)["error"]


def still_serving(server: wizard.WizardServer) -> bool:
    return call(server, "POST", "/api/validate", {"config": CONFIG})[0] == 200


@pytest.mark.parametrize("length", ["²".encode("latin-1"), b"-5", b"1e3", b"0x10", b" "])
def test_a_content_length_that_is_not_ascii_digits_is_a_bad_request(
    impatient_server: wizard.WizardServer, length: bytes
) -> None:
    # "²".isdigit() is True but int("²") raises: that used to kill the handler without an answer
    status, error = status_and_error(raw_request(impatient_server, length, b"{}"))
    assert (status, error) == (400, "Content-Length must be a number of bytes")
    assert still_serving(impatient_server)


def test_bodies_over_one_mib_are_refused_unread(impatient_server: wizard.WizardServer) -> None:
    for length in (str(wizard.MAX_BODY_BYTES + 1).encode(), b"9" * 5000, b"0" * 50 + b"2000000"):
        status, _ = status_and_error(raw_request(impatient_server, length, b""))
        assert status == 413, length[:20]
    exactly_the_limit = b'{"config": "' + b"x" * (wizard.MAX_BODY_BYTES - 14) + b'"}'
    assert len(exactly_the_limit) == wizard.MAX_BODY_BYTES
    status, error = status_and_error(
        raw_request(impatient_server, str(wizard.MAX_BODY_BYTES).encode(), exactly_the_limit)
    )
    assert status == 400 and error.startswith('send {"answers"')  # read and parsed: only the content is wrong
    assert still_serving(impatient_server)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,  # json.loads would raise RecursionError
        b'{"config": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_001,
    ],
    ids=["lists", "objects"],
)
def test_deeply_nested_json_is_a_bad_request(impatient_server: wizard.WizardServer, body: bytes) -> None:
    status, error = status_and_error(raw_request(impatient_server, str(len(body)).encode(), body))
    assert (status, error) == (400, f"body nests deeper than {wizard.MAX_JSON_DEPTH} levels")
    assert still_serving(impatient_server)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b'{"config": ' + b"1" * 5000 + b"}", "body is not JSON"),  # int() refuses 5,000 digits with ValueError
        (b'{"config": "\xff"}', "body is not UTF-8"),
        (b"[1, 2]", "body must be a JSON object"),
        (b"{", "body is not JSON"),
    ],
)
def test_unusable_bodies_are_bad_requests(impatient_server: wizard.WizardServer, body: bytes, error: str) -> None:
    assert status_and_error(raw_request(impatient_server, str(len(body)).encode(), body)) == (400, error)


def test_nesting_is_counted_outside_strings_only() -> None:
    limit = wizard.MAX_JSON_DEPTH
    assert wizard.parse_json_object(b'{"a": ' * limit + b"1" + b"}" * limit) is not None
    with pytest.raises(wizard.BadRequest, match="nests deeper"):
        wizard.parse_json_object(b'{"a": ' * (limit + 1) + b"1" + b"}" * (limit + 1))
    brackets = "[{" * 1000 + '\\"[' + "}]" * 10  # brackets (and an escaped quote) inside a string value
    assert wizard.parse_json_object(json.dumps({"name": brackets}).encode()) == {"name": brackets}


@pytest.mark.parametrize("body", [b'"\\' * 500_000, b'["\\' * 340_000, b'"' + b"\\" * 1_000_000])
def test_measuring_the_nesting_takes_linear_time(body: bytes) -> None:
    """Strings are skipped by a pattern that never backtracks (one that did took hours on '"\\' repeated)."""
    started = time.monotonic()
    with pytest.raises(wizard.BadRequest):
        wizard.parse_json_object(body)
    assert time.monotonic() - started < 5  # about 0.1 s; quadratic would be hours


def test_a_body_shorter_than_its_content_length_times_out(impatient_server: wizard.WizardServer) -> None:
    started = time.monotonic()
    response = raw_request(impatient_server, b"100", b'{"config":', close=False)  # then silence
    waited = time.monotonic() - started
    assert status_and_error(response)[0] == 408
    assert 0.9 < waited < 10  # the server gave up after its 1 s read timeout and closed the connection
    assert still_serving(impatient_server)


def test_the_ui_command_prints_its_url_and_stops_on_ctrl_c() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "eksight.tools.cli", "ui", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        match = re.fullmatch(r"eksight wizard: http://127\.0\.0\.1:(\d+)/#token=([\w-]{40,})\n", first)
        assert match, first
        port = int(match[1])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/api/meta", headers={wizard.TOKEN_HEADER: match[2]})
        assert connection.getresponse().status == 200
        connection.close()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "stopped" in out and "Traceback" not in err


# --- validation and the form's fields ----------------------------------------------------------------------


def _parse_problems(config: dict[str, Any]) -> set[tuple[str, str]]:
    with pytest.raises(config_module.ConfigError) as raised:
        config_module.parse(config)
    return set(raised.value.problems)


def test_validate_reports_parse_problems_on_the_form_fields_that_own_them(server: wizard.WizardServer) -> None:
    bad = {
        "name_prefix": "Bad_Prefix",
        "account": "1234",
        "detection": {"learning_days": 120},
        "defaults": {
            "archive": {"expiration_days": 30, "transition_days": 60},
            "findings": {"central_bus_arn": "arn:aws:events:us-east-1:123:bus"},
        },
        "regions": {
            "us-east-9": {"clusters": ["a"]},
            "eu-west-1": {
                "clusters": ["ok", "bad name!"],
                "archive": {"existing_bucket_arn": "arn:aws:s3:::Not_A_Bucket"},
                "encryption": {"existing_kms_key_arn": "alias/mine"},
            },
        },
    }
    status, result = post_json(server, "/api/validate", {"config": bad})
    assert status == 200 and result["ok"] is False
    fields = {p["path"]: p["field"] for p in result["problems"]}
    assert fields == {
        "name_prefix": "name_prefix",
        "account": "account",
        "detection.learning_days": "detection.learning_days",
        "defaults.archive": "defaults.archive.transition_days",  # transition ≥ expiration
        "defaults.findings.central_bus_arn": "defaults.findings.central_bus_arn",
        "regions.us-east-9": "regions.us-east-9",  # the region picker
        "regions.eu-west-1.clusters": "regions.eu-west-1.clusters",
        "regions.eu-west-1.archive.existing_bucket_arn": "regions.eu-west-1.archive.existing_bucket_arn",
        "regions.eu-west-1.encryption.existing_kms_key_arn": "regions.eu-west-1.encryption.existing_kms_key_arn",
    }
    # parse reports a shared option's problem once, at defaults (not again under every region), and the form shows
    # exactly parse's problems, with parse's messages (and their fixes): none invented, lost or repeated.
    parsed = _parse_problems(bad)
    assert {(p["path"], p["message"]) for p in result["problems"]} == parsed
    assert len(result["problems"]) == len(parsed)
    assert "did you mean us-east-2, us-east-1" in next(
        p["message"] for p in result["problems"] if p["path"] == "regions.us-east-9"
    )


def test_problems_of_a_region_that_the_form_sets_for_all_regions_go_to_the_shared_field(
    server: wizard.WizardServer,
) -> None:
    # cross-field checks (run once the models validate): a cross-partition bus, reported per region
    config = {
        "defaults": {"findings": {"central_bus_arn": "arn:aws-cn:events:cn-north-1:123456789012:event-bus/x"}},
        "regions": {"us-east-1": {"clusters": ["a"]}, "eu-west-1": {"clusters": ["b"]}},
    }
    _, result = post_json(server, "/api/validate", {"config": config})
    assert [(p["path"], p["field"]) for p in result["problems"]] == [
        ("regions.us-east-1.findings.central_bus_arn", "defaults.findings.central_bus_arn"),
        ("regions.eu-west-1.findings.central_bus_arn", "defaults.findings.central_bus_arn"),
    ]
    assert "us-east-1 is in aws" in result["problems"][0]["message"]
    assert "eu-west-1 is in aws" in result["problems"][1]["message"]

    # object-level problems: email (shared) + the region's own topic → the region's topic field; settings
    # for a brought bucket → that region's bucket field
    config = {
        "defaults": {"findings": {"notifications": {"email": ["sec@example.com"]}}},
        "regions": {
            "us-east-1": {
                "clusters": ["a"],
                "findings": {"notifications": {"sns_topic_arn": "arn:aws:sns:us-east-1:123456789012:alerts"}},
            },
            "eu-west-1": {
                "clusters": ["b"],
                "archive": {"existing_bucket_arn": "arn:aws:s3:::mine", "versioning": False},
            },
        },
    }
    _, result = post_json(server, "/api/validate", {"config": config})
    assert {(p["path"], p["field"]) for p in result["problems"]} == {
        ("regions.us-east-1.findings.notifications", "regions.us-east-1.findings.notifications.sns_topic_arn"),
        ("regions.eu-west-1.archive", "regions.eu-west-1.archive.existing_bucket_arn"),
    }


def test_every_field_the_server_maps_to_is_on_the_page_and_is_a_config_field() -> None:
    page = (STATIC / "index.html").read_text()
    data_paths = set(re.findall(r'data-path="([^"]+)"', page))
    assert data_paths == set(web_form.GLOBAL_FIELDS)
    region_fields = set(re.findall(r'data-field="([^"]+)"', page)) - {"region"}
    assert region_fields == set(web_form.REGION_FIELDS)

    def exists(model: Any, dotted: str) -> bool:
        for part in dotted.split("."):
            info = model.model_fields.get(part)
            if info is None:
                return False
            model = info.annotation
        return True

    for path in web_form.GLOBAL_FIELDS:
        model, rest = (
            (config_module.RegionOptions, path.removeprefix("defaults."))
            if path.startswith("defaults.")
            else (config_module.ConfigFile, path)
        )
        assert exists(model, rest), path
    for path in web_form.REGION_FIELDS:
        assert exists(config_module.RegionEntry, path), path


def test_a_valid_draft_returns_the_file_and_the_stacks_it_deploys(server: wizard.WizardServer) -> None:
    status, result = post_json(server, "/api/validate", {"config": CONFIG})
    assert status == 200 and result["ok"] is True and result["problems"] == []
    written = json.loads(result["config_text"])
    assert written.pop("$schema") == "./schema/eksight.config.schema.json" and written == CONFIG
    # per region in the config's order: the ingestion stack, then the detection stack (named by name_prefix);
    # what they hold is only known from synthesizing them (test_preview_… below)
    assert result["stacks"] == [
        "acme-ingestion-us-east-1",
        "acme-detection-us-east-1",
        "acme-ingestion-eu-west-1",
        "acme-detection-eu-west-1",
    ]
    _, invalid = post_json(server, "/api/validate", {"config": {"regions": {"us-east-1": {"clusters": []}}}})
    assert invalid["ok"] is False and "stacks" not in invalid


def test_the_page_answers_map_through_answers_to_config(server: wizard.WizardServer) -> None:
    answers = Answers(
        regions=[RegionAnswers("eu-west-1", ["eu-prod"], sns_topic_arn=None)],
        account=ACCOUNT,
        transition_days="never",
        learning_days=7,
        securityhub=True,
        central_bus_arn=BUS,
    )
    status, result = post_json(server, "/api/validate", {"answers": answers.to_dict()})
    assert status == 200 and result["ok"] is True
    assert result["config"] == {
        "account": ACCOUNT,
        "defaults": {"archive": {"transition_days": None}, "findings": {"central_bus_arn": BUS}},
        "regions": {"eu-west-1": {"clusters": ["eu-prod"]}},
    }
    for malformed in ({"regions": ["eu-west-1"]}, {"notify_emails": 5}, [], "answers"):
        assert post_json(server, "/api/validate", {"answers": malformed})[0] == 400, malformed
    assert post_json(server, "/api/validate", {"nothing": 1})[0] == 400


def test_meta_lists_every_eks_region_by_partition(server: wizard.WizardServer) -> None:
    status, _, data = call(server, "GET", "/api/meta")
    assert status == 200
    meta = json.loads(data)
    listed = {r["name"]: group["partition"] for group in meta["regions"] for r in group["regions"]}
    assert listed == config_module.regions.eks_regions()
    assert [group["partition"] for group in meta["regions"]] == ["aws", "aws-cn", "aws-us-gov"]
    assert {"name": "eu-west-1", "description": "Europe (Ireland)"} in meta["regions"][0]["regions"]
    assert meta["defaults"]["archive"]["expiration_days"] == 365 and meta["defaults"]["learning_days"] == 7
    assert meta["command"] == bundle.CLOUDSHELL_COMMAND


# --- cluster discovery ---------------------------------------------------------------------------------------


def test_discover_lists_the_clusters_with_working_credentials(server: wizard.WizardServer) -> None:
    import boto3
    from moto import mock_aws

    with mock_aws():
        eks = boto3.client("eks", region_name="eu-west-1")
        for name in ("zeta", "alpha"):
            eks.create_cluster(
                name=name, roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks", resourcesVpcConfig={"subnetIds": []}
            )
        assert post_json(server, "/api/discover", {"region": "eu-west-1"}) == (
            200,
            {"ok": True, "clusters": ["alpha", "zeta"]},
        )
        assert post_json(server, "/api/discover", {"region": "us-east-1"}) == (200, {"ok": True, "clusters": []})
    assert post_json(server, "/api/discover", {"region": "mars-1"})[0] == 400


def test_discover_says_clearly_when_there_are_no_credentials(
    server: wizard.WizardServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    status, result = post_json(server, "/api/discover", {"region": "eu-west-1"})
    assert status == 200 and result["ok"] is False
    assert result["message"].startswith("No AWS credentials on this computer") and "Type" in result["message"]


# --- the bundle ---------------------------------------------------------------------------------------------------

PROMISED_TOP_LEVEL = {
    "app.py",
    "cdk.json",
    "package.json",
    "package-lock.json",
    "Makefile",
    "eksight.config.json",
    "deploy.sh",
    "eksight",
    "stacks",
    "lambdas",
    "schema",
    *(p.name for p in ROOT.glob("requirements*.txt")),
    *(p.name for p in ROOT.glob("requirements*.lock")),
}
NEVER_SHIPPED = {
    ".venv",
    "node_modules",
    "cdk.out",
    "tests",
    "__pycache__",
    ".git",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    "build",
}


def test_the_bundle_holds_exactly_the_app_config_and_script(server: wizard.WizardServer) -> None:
    with download_bundle(server, CONFIG) as tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        assert len(names) == len(set(names))
        assert all(m.isfile() for m in members)
        assert all(not n.startswith(("/", "..")) and ".." not in n.split("/") for n in names)
        assert {n.split("/")[0] for n in names} == PROMISED_TOP_LEVEL
        for name in names:
            parts = set(name.split("/"))
            assert not parts & NEVER_SHIPPED, name
            assert not name.endswith((".pyc", ".pyo")) and not any(p.startswith(".") for p in parts), name
        shipped_python = {n for n in names if n.endswith(".py")}
        in_tree = {
            p.relative_to(ROOT).as_posix()
            for d in ("eksight", "stacks", "lambdas")
            for p in (ROOT / d).rglob("*.py")
            if "__pycache__" not in p.parts and "tests" not in p.parts
        }
        assert shipped_python == in_tree | {"app.py"}
        for needed in (
            "eksight/config/__init__.py",
            "stacks/app_builder.py",
            "lambdas/detector/handler.py",
            "schema/eksight.config.schema.json",
            "eksight/tools/setup/static/index.html",
            "requirements.txt",
            "requirements-deploy.lock",
            "requirements-lambda.lock",
        ):
            assert needed in names, needed
        script = tar.getmember("deploy.sh")
        assert stat.S_IMODE(script.mode) == 0o755
        assert tar.extractfile(script).read() == (ROOT / "eksight" / "tools" / "setup" / "deploy.sh").read_bytes()
        assert tar.extractfile("app.py").read() == (ROOT / "app.py").read_bytes()


def test_the_bundle_leaves_out_what_a_working_tree_accumulates(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(
        ROOT,
        tree,
        ignore=shutil.ignore_patterns(
            ".venv", "node_modules", "cdk.out", ".git", "build", "tests", ".hypothesis", "test-artifacts", "bench"
        ),
        symlinks=True,
    )
    planted = [
        "eksight/tests/test_x.py",
        "eksight/__pycache__/config.cpython-311.pyc",
        "stacks/.DS_Store",
        "lambdas/detector/node_modules/x.js",
        "eksight/tools/setup/static/.app.js.swp",
        "eksight/config.py~",
        "eksight/thing.egg-info/PKG-INFO",
        "lambdas/detector/cdk.out/manifest.json",
        "schema/.hidden/x.json",
    ]
    for rel in planted:
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text("x")
    (tree / "stacks" / "link.py").symlink_to(tree / "app.py")
    with tarfile.open(fileobj=io.BytesIO(bundle.build_bundle(CONFIG, tree)), mode="r:gz") as tar:
        names = set(tar.getnames())
    assert not names & {*planted, "stacks/link.py"}
    assert "eksight/config/__init__.py" in names and "stacks/__init__.py" in names


def test_the_bundled_config_loads_and_matches_the_schema(server: wizard.WizardServer, tmp_path: Path) -> None:
    with download_bundle(server, CONFIG) as tar:
        tar.extractall(tmp_path, filter="data")
    path = tmp_path / "eksight.config.json"
    deployment = config_module.load(path)
    assert [(r.region, r.clusters) for r in deployment.regions] == [
        ("us-east-1", ("prod-api", "staging")),
        ("eu-west-1", ("eu-prod",)),
    ]
    content = json.loads(path.read_text())
    schema = json.loads((path.parent / content["$schema"]).read_text())  # the reference resolves in the bundle
    jsonschema.validate(content, schema)


def test_an_invalid_config_gets_problems_not_a_bundle(server: wizard.WizardServer) -> None:
    broken = {"regions": {"us-east-1": {"clusters": []}}}
    status, headers, data = call(server, "POST", "/api/bundle", {"config": broken})
    assert status == 422 and headers["content-type"] == "application/json"
    assert json.loads(data)["problems"][0]["field"] == "regions.us-east-1.clusters"


# --- deploy.sh ----------------------------------------------------------------------------------------------------

FAKE_COMMAND = r"""#!/usr/bin/env bash
# A stand-in for node/npm/npx/aws/python: records the call, answers like the real command would.
name="$(basename "$0")"
printf '%s\n' "$name $*" >> "$FAKE_RECORD"
case "$name $*" in
  "node --version") echo "${FAKE_NODE_VERSION:-v20.11.1}" ;;
  "npm --version") echo 10.2.4 ;;
  "aws sts get-caller-identity"*) echo "${FAKE_ACCOUNT:-111122223333}" ;;
  "aws ssm get-parameter"*)
    if [[ " ${FAKE_UNBOOTSTRAPPED:-} " == *" $4 "* ]]; then
      echo "An error occurred (ParameterNotFound) when calling the GetParameter operation" >&2; exit 254
    fi
    echo 21 ;;
  "aws eks describe-cluster"*)
    if [[ " ${FAKE_AUDIT_OFF:-} " == *" $6 "* ]]; then echo "api"; else echo "api	audit"; fi ;;
  "aws eks update-cluster-config"*) echo "update-$6" ;;
  "aws eks describe-update"*) echo Successful ;;
  "aws logs describe-log-groups"*) echo "/aws/eks/$6/cluster" ;;
  "python -m venv"*) mkdir -p "$3/bin" && cp "$0" "$3/bin/python" ;;
  "python -m eksight.config"*) exec "$FAKE_REAL_PYTHON" "$@" ;;  # the real validator, on the bundled config
  "python -m pip install"*)  # creates its --target, as pip does
    for ((i = 1; i < $#; i++)); do [[ ${!i} == --target ]] && { j=$((i + 1)); mkdir -p "${!j}"; }; done ;;
  "npm ci"*) mkdir -p node_modules ;;
esac
exit 0
"""
MUTATING = ("cdk bootstrap", "cdk deploy", "update-cluster-config", "npm ci", "pip install", "-m venv")
CHANGES_AWS = ("cdk bootstrap", "cdk deploy", "update-cluster-config")
VENV_INSTALL = [
    "python -m venv .venv",
    "python -m pip install --quiet --no-compile --require-hashes -r requirements-deploy.lock",
]
VALIDATION = "python -m eksight.config eksight.config.json"
# df -Pm as coreutils prints it, with $FAKE_FREE_MIB MiB available (plenty unless set)
FAKE_DF = r"""#!/usr/bin/env bash
echo "Filesystem     1048576-blocks  Used Available Capacity Mounted on"
echo "/dev/loop0              200000  1000 ${FAKE_FREE_MIB:-199000}      1% /home"
"""


@pytest.fixture
def bundle_dir(server: wizard.WizardServer, tmp_path: Path) -> Path:
    target = tmp_path / "home" / "eksight"
    target.mkdir(parents=True)
    with download_bundle(server, CONFIG) as tar:
        tar.extractall(target, filter="data")
    return target


@pytest.fixture
def fake_path(tmp_path: Path) -> Path:
    """A directory of fake node, npm, npx and aws commands, plus a python3.11 whose `-m venv` is faked."""
    shims = tmp_path / "shims"
    shims.mkdir()
    for name in ("node", "npm", "npx", "aws", "python"):
        (shims / name).write_text(FAKE_COMMAND)
        (shims / name).chmod(0o755)
    (shims / "python3.11").write_text(
        f'#!/usr/bin/env bash\n[[ "$1" == -m && "$2" == venv ]] && '
        f'exec "{shims}/python" "$@"\nexec "{sys.executable}" "$@"\n'
    )
    (shims / "python3.11").chmod(0o755)
    (shims / "df").write_text(FAKE_DF)
    (shims / "df").chmod(0o755)
    return shims


def run_deploy(
    bundle_dir: Path, fake_path: Path, *args: str, **fake: str
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    record = fake_path.parent / "calls.txt"
    record.unlink(missing_ok=True)
    env = {
        "PATH": f"{fake_path}:/usr/bin:/bin",
        "HOME": str(bundle_dir.parent),
        "FAKE_RECORD": str(record),
        "FAKE_REAL_PYTHON": sys.executable,
        "LANG": "C.UTF-8",
        **{f"FAKE_{k.upper()}": v for k, v in fake.items()},
    }
    result = subprocess.run(
        ["bash", str(bundle_dir / "deploy.sh"), *args],
        cwd=fake_path.parent,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    calls = record.read_text().splitlines() if record.exists() else []
    return result, calls


def test_deploy_script_passes_shellcheck(bundle_dir: Path) -> None:
    shellcheck = shutil.which("shellcheck")
    require(shellcheck is not None, "shellcheck")
    result = subprocess.run(
        [shellcheck, "--severity=style", "--shell=bash", str(bundle_dir / "deploy.sh")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_deploy_script_installs_the_lambda_dependencies_as_make_install_does() -> None:
    """deploy.sh repeats the Makefile's vendoring of requirements-lambda.txt; the two must not drift."""
    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    recipe = next(line for line in makefile.splitlines() if "--target build/lambda-deps" in line)
    flags = re.findall(r"(--[\w-]+(?:=\S+)?)(?: ([^-\s]\S*))?", recipe.split(" install ", 1)[1])
    script = (ROOT / "eksight" / "tools" / "setup" / "deploy.sh").read_text().replace("\\\n", " ")
    command = " ".join(next(line for line in script.splitlines() if "--target build/lambda-deps" in line).split())
    for flag, value in flags:
        if flag not in ("--quiet", "--disable-pip-version-check"):
            assert f"{flag} {value}".strip() in command, (flag, value)


def test_deploy_help(bundle_dir: Path, fake_path: Path) -> None:
    result, calls = run_deploy(bundle_dir, fake_path, "--help")
    assert result.returncode == 0 and calls == []
    for option in ("--dry-run", "--enable-audit-logging", "--yes", "--require-approval"):
        assert option in result.stdout
    bad, _ = run_deploy(bundle_dir, fake_path, "--frobnicate")
    assert bad.returncode == 2 and "unknown option --frobnicate" in bad.stderr


def test_dry_run_prints_every_command_with_the_configs_regions_and_runs_none(bundle_dir: Path, fake_path: Path) -> None:
    result, calls = run_deploy(bundle_dir, fake_path, "--dry-run", "--enable-audit-logging")
    assert result.returncode == 0, result.stderr
    assert calls == [], "a dry run must not call aws, npx, node, npm or pip at all"
    assert not (bundle_dir / ".venv").exists() and not (bundle_dir / "node_modules").exists()
    commands = [line for line in result.stdout.splitlines() if line.startswith("+ ")]

    def has(expected: str) -> bool:
        return any(line == f"+ {expected}" or line.startswith(f"+ {expected}  # ") for line in commands)

    assert has("aws sts get-caller-identity --query Account --output text")
    for region in ("us-east-1", "eu-west-1"):
        assert has(
            f"aws ssm get-parameter --region {region} --name /cdk-bootstrap/hnb659fds/version "
            "--query Parameter.Value --output text"
        )
        assert has(f"npx --no-install cdk bootstrap aws://{ACCOUNT}/{region}")
        for kind in ("ingestion", "detection"):
            assert has(
                f"aws cloudformation describe-stacks --region {region} --stack-name acme-{kind}-{region} "
                "--query 'Stacks[0].Outputs[].[OutputKey,OutputValue]' --output table"
            )
    for region, cluster in (("us-east-1", "prod-api"), ("us-east-1", "staging"), ("eu-west-1", "eu-prod")):
        assert has(
            f"aws eks describe-cluster --region {region} --name {cluster} "
            "--query 'cluster.logging.clusterLogging[?enabled].types[]' --output text"
        )
    updates = [line for line in commands if "update-cluster-config" in line]
    # eu-west-1's stack turns audit logging on itself (enable_audit_logging), so only us-east-1's clusters
    assert [line.split("--name ")[1].split()[0] for line in updates] == ["prod-api", "staging"]
    assert has("npm ci --omit=dev --no-audit --no-fund --loglevel=error")
    assert has(".venv/bin/python -m pip install --quiet --no-compile --require-hashes -r requirements-deploy.lock")
    assert has(".venv/bin/python -m eksight.config eksight.config.json")
    assert has("npx --no-install cdk deploy --all --require-approval broadening -c config=eksight.config.json")
    order = [
        next(i for i, line in enumerate(commands) if marker in line)
        for marker in (
            "--require-hashes -r requirements-deploy.lock",
            "-m eksight.config",
            "sts get-caller-identity",
            "npm ci",
            "cdk bootstrap",
            "cdk deploy",
            "describe-stacks",
        )
    ]
    assert order == sorted(order)

    never, calls = run_deploy(bundle_dir, fake_path, "--dry-run", "--require-approval", "never")
    assert calls == [] and "+ npx --no-install cdk deploy --all --require-approval never" in never.stdout
    assert "update-cluster-config" not in never.stdout  # only with --enable-audit-logging


def test_a_real_run_checks_everything_before_changing_anything(bundle_dir: Path, fake_path: Path) -> None:
    """The only change before every check has passed is the Python venv in the bundle directory (the config is
    validated in it); nothing in AWS, no npm or Lambda dependencies."""
    result, calls = run_deploy(bundle_dir, fake_path, audit_off="staging")
    assert result.returncode == 1
    assert "audit logging is off on: us-east-1/staging" in result.stderr and "--enable-audit-logging" in result.stderr
    assert "aws eks describe-cluster --region us-east-1 --name staging" in "\n".join(calls)
    assert [c for c in calls if any(m in c for m in MUTATING)] == VENV_INSTALL, calls

    other, calls = run_deploy(bundle_dir, fake_path, account="999999999999")
    assert other.returncode == 1 and "credentials are for account 999999999999" in other.stderr
    assert not [c for c in calls if any(m in c for m in MUTATING)], calls

    unbootstrapped, calls = run_deploy(bundle_dir, fake_path, unbootstrapped="eu-west-1")
    assert unbootstrapped.returncode == 1 and "eu-west-1 must be bootstrapped" in unbootstrapped.stderr
    assert not [c for c in calls if any(m in c for m in MUTATING)], calls

    old_node, calls = run_deploy(bundle_dir, fake_path, node_version="v18.19.0")
    assert old_node.returncode == 1 and "Node.js 20 or newer is required, found v18.19.0" in old_node.stderr


def test_a_real_run_installs_bootstraps_enables_deploys_and_shows_outputs(bundle_dir: Path, fake_path: Path) -> None:
    result, calls = run_deploy(
        bundle_dir,
        fake_path,
        "--yes",
        "--enable-audit-logging",
        unbootstrapped="eu-west-1",
        audit_off="staging eu-prod",
    )
    assert result.returncode == 0, result.stderr
    changes = [c for c in calls if any(m in c for m in MUTATING)]
    assert changes == [
        *VENV_INSTALL,
        "python -m pip install --quiet --no-compile --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 "
        "--implementation cp --python-version 3.12 --only-binary=:all: --target build/lambda-deps "
        "--require-hashes -r requirements-lambda.lock",
        "npm ci --omit=dev --no-audit --no-fund --loglevel=error",
        f"npx --no-install cdk bootstrap aws://{ACCOUNT}/eu-west-1",  # us-east-1 is bootstrapped already
        # staging is off and its region leaves audit logging to us; eu-prod's stack turns it on itself
        "aws eks update-cluster-config --region us-east-1 --name staging --logging "
        '{"clusterLogging":[{"types":["audit"],"enabled":true}]} --query update.id --output text',
        "npx --no-install cdk deploy --all --require-approval broadening -c config=eksight.config.json",
    ]
    assert calls.index(VALIDATION) < min(i for i, c in enumerate(calls) if c.startswith("aws "))
    first_change = calls.index(changes[len(VENV_INSTALL)])  # after the venv: nothing is checked any more
    assert all("describe-cluster" not in c and "get-caller-identity" not in c for c in calls[first_change:])
    assert [c.split("--stack-name ")[1].split()[0] for c in calls if "describe-stacks" in c] == [
        "acme-ingestion-us-east-1",
        "acme-detection-us-east-1",
        "acme-ingestion-eu-west-1",
        "acme-detection-eu-west-1",
    ]
    assert "the stack turns it on" in result.stdout and "eu-west-1/eu-prod" in result.stdout

    again, calls = run_deploy(bundle_dir, fake_path)  # installed and bootstrapped now: straight to the deploy
    assert again.returncode == 0, again.stderr
    assert [c for c in calls if any(m in c for m in MUTATING)] == [
        "npx --no-install cdk deploy --all --require-approval broadening -c config=eksight.config.json"
    ]

    # installed, only cdk.out still to come: 150 MiB free is enough
    tight, calls = run_deploy(bundle_dir, fake_path, free_mib="150")
    assert tight.returncode == 0, tight.stderr


def test_an_invalid_config_stops_the_deploy_before_any_aws_call(bundle_dir: Path, fake_path: Path) -> None:
    config = json.loads((bundle_dir / "eksight.config.json").read_text())
    config["regions"]["us-east-1"]["clusters"] = []  # the stdlib reader in deploy.sh takes it; eksight.config not
    (bundle_dir / "eksight.config.json").write_text(json.dumps(config))
    result, calls = run_deploy(bundle_dir, fake_path, "--enable-audit-logging", "--yes")
    assert result.returncode == 1
    assert "regions.us-east-1.clusters" in result.stderr and "eksight.config.json is not valid" in result.stderr
    assert calls[-1] == VALIDATION
    assert not [c for c in calls if c.startswith(("aws ", "npx ", "npm ci"))], calls


def test_too_little_disk_space_stops_the_deploy_before_installing_with_the_fix(
    bundle_dir: Path, fake_path: Path
) -> None:
    result, calls = run_deploy(bundle_dir, fake_path, free_mib="600")
    assert result.returncode == 1
    # a first install: the venv 330 + Lambda dependencies 110 + CDK CLI 35 + cdk.out 150 MiB
    assert "only 600 MiB free" in result.stderr and "needs about 625 MiB" in result.stderr
    fix = "mkdir -p /tmp/eksight && tar -xzf ~/eksight-bundle.tar.gz -C /tmp/eksight && bash /tmp/eksight/deploy.sh"
    assert fix in result.stderr and "emptied when the CloudShell session ends" in result.stderr
    assert not [c for c in calls if c.startswith("aws ") or any(m in c for m in MUTATING)], calls

    dry, calls = run_deploy(bundle_dir, fake_path, "--dry-run", free_mib="600")
    assert dry.returncode == 0 and "only 600 MiB free" in dry.stderr and calls == []


# --- resource preview by synthesis (slow: the real CDK app, ~15-40 s) ---------------------------------------------


@pytest.mark.slow
def test_preview_describes_what_the_synthesized_templates_create(server: wizard.WizardServer) -> None:
    if not (ROOT / "build" / "lambda-deps" / ".installed").exists():
        pytest.fail("the Lambda dependencies are not built: run make install")
    config = {
        **CONFIG,
        "detection": {"learning_days": 10},
        "defaults": {
            **CONFIG["defaults"],
            "archive": {"expiration_days": 400, "transition_days": 45, "transition_storage_class": "STANDARD_IA"},
            "delivery": {"buffering_interval_seconds": 120, "buffering_size_mib": 32},
        },
    }
    tree_config = ROOT / "eksight.config.json"
    before = tree_config.read_bytes() if tree_config.exists() else None
    status, result = post_json(server, "/api/preview", {"config": config})
    assert status == 200 and result["ok"] is True, result
    stacks = {stack["stack"]: stack for stack in result["stacks"]}
    assert set(stacks) == {
        f"acme-{kind}-{region}" for kind in ("ingestion", "detection") for region in CONFIG["regions"]
    }
    lines = {name: {line["label"]: line["text"] for line in stack["lines"]} for name, stack in stacks.items()}

    # us-east-1 brings its bucket and leaves audit logging alone; one stream + filter per cluster, as buffered
    use1 = stacks["acme-ingestion-us-east-1"]
    assert use1["clusters"] == ["prod-api", "staging"]
    assert use1["resource_types"]["AWS::Logs::SubscriptionFilter"] == 2
    assert lines[use1["stack"]]["bucket"].startswith("existing bucket acme-audit")
    assert lines[use1["stack"]]["clusters"] == "prod-api, staging  (audit logging: must already be on)"
    streams = [line["text"] for line in use1["lines"] if line["label"] == "stream"]
    assert len(streams) == 2 and all("[120 s / 32 MiB, " in stream for stream in streams)
    # eu-west-1 gets a new bucket with the lifecycle asked for, and the stack turns audit logging on
    euw1 = lines["acme-ingestion-eu-west-1"]
    assert (
        euw1["bucket"]
        == "new, KMS, versioned, expire after 400 d, STANDARD_IA after 45 d, access logs to a separate bucket"
    )
    assert euw1["clusters"] == "eu-prod  (audit logging: enabled by this stack)"
    for region in CONFIG["regions"]:
        detection = stacks[f"acme-detection-{region}"]
        assert detection["resource_types"]["AWS::Events::EventBus"] == 1
        assert lines[detection["stack"]]["detector"].endswith("learning 10 d")
        routes = [line["text"] for line in detection["lines"] if line["label"] == "route"]
        assert f"every finding → event bus {BUS}" in routes
    assert result["seconds"] > 0
    # synthesized from a temporary copy of the config, not from the tree's own
    assert (tree_config.read_bytes() if tree_config.exists() else None) == before
