"""`eksight ui`: the local server's protections, its validation and field mapping, the CloudShell bundle and
the deploy.sh it ships (shellcheck, --dry-run, and a real run against fake aws/npx/node/npm commands)."""

from __future__ import annotations

import http.client
import io
import json
import re
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from eksight import config as config_module
from eksight.tools.setup import bundle, wizard
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


@pytest.fixture
def server() -> Iterator[wizard.WizardServer]:
    running = wizard.WizardServer(0)
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    yield running
    running.shutdown()
    running.server_close()
    thread.join(timeout=5)


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
    # parse repeats a shared option's problem under every region (regions.R.findings.central_bus_arn…); the form
    # shows it once on the shared field. The messages are parse's own (with their fixes): none invented or lost.
    parsed = _parse_problems(bad)
    assert {(p["path"], p["message"]) for p in result["problems"]} <= parsed
    assert {p["message"] for p in result["problems"]} == {message for _, message in parsed}
    assert len(parsed) > len(result["problems"])
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
    assert data_paths == set(wizard.GLOBAL_FIELDS)
    region_fields = set(re.findall(r'data-field="([^"]+)"', page)) - {"region"}
    assert region_fields == set(wizard.REGION_FIELDS)

    def exists(model: Any, dotted: str) -> bool:
        for part in dotted.split("."):
            info = model.model_fields.get(part)
            if info is None:
                return False
            model = info.annotation
        return True

    for path in wizard.GLOBAL_FIELDS:
        model, rest = (
            (config_module.RegionOptions, path.removeprefix("defaults."))
            if path.startswith("defaults.")
            else (config_module.ConfigFile, path)
        )
        assert exists(model, rest), path
    for path in wizard.REGION_FIELDS:
        assert exists(config_module.RegionEntry, path), path


def test_a_valid_draft_returns_the_file_and_what_each_region_gets(server: wizard.WizardServer) -> None:
    status, result = post_json(server, "/api/validate", {"config": CONFIG})
    assert status == 200 and result["ok"] is True and result["problems"] == []
    written = json.loads(result["config_text"])
    assert written.pop("$schema") == "./schema/eksight.config.schema.json" and written == CONFIG
    by_stack = {stack["name"]: stack["resources"] for region in result["resources"] for stack in region["stacks"]}
    assert list(by_stack) == [
        "acme-ingestion-us-east-1",
        "acme-detection-us-east-1",
        "acme-ingestion-eu-west-1",
        "acme-detection-eu-west-1",
    ]
    use1, euw1 = by_stack["acme-ingestion-us-east-1"], by_stack["acme-ingestion-eu-west-1"]
    assert [r for r in use1 if r.startswith("Firehose stream")] == [
        "Firehose stream (60 s / 16 MiB) + subscription filter on /aws/eks/prod-api/cluster (default filter pattern)",
        "Firehose stream (60 s / 16 MiB) + subscription filter on /aws/eks/staging/cluster (default filter pattern)",
    ]
    assert any(r.startswith("S3 archive bucket: existing acme-audit") for r in use1)
    assert "S3 access-log bucket" not in use1 and "S3 access-log bucket" in euw1
    assert any(r.startswith("S3 archive bucket: new, KMS, versioned, expire after 365 d") for r in euw1)
    assert "custom resource turning on EKS audit logging for eu-prod" in euw1
    assert not any("audit logging" in r for r in use1)
    assert f"EventBridge rule forwarding every finding to {BUS}" in by_stack["acme-detection-eu-west-1"]


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
            "requirements-lambda.txt",
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
  "python -m pip install"*)  # creates its --target, as pip does
    for ((i = 1; i < $#; i++)); do [[ ${!i} == --target ]] && { j=$((i + 1)); mkdir -p "${!j}"; }; done ;;
  "npm ci"*) mkdir -p node_modules ;;
esac
exit 0
"""
MUTATING = ("cdk bootstrap", "cdk deploy", "update-cluster-config", "npm ci", "pip install", "-m venv")


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
    assert calls == [], "a dry run must not call aws, npx, node or npm at all"
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
    assert has("npm ci --no-audit --no-fund --loglevel=error")
    assert has("npx --no-install cdk deploy --all --require-approval broadening -c config=eksight.config.json")
    order = [
        next(i for i, line in enumerate(commands) if marker in line)
        for marker in ("sts get-caller-identity", "npm ci", "cdk bootstrap", "cdk deploy", "describe-stacks")
    ]
    assert order == sorted(order)

    never, calls = run_deploy(bundle_dir, fake_path, "--dry-run", "--require-approval", "never")
    assert calls == [] and "+ npx --no-install cdk deploy --all --require-approval never" in never.stdout
    assert "update-cluster-config" not in never.stdout  # only with --enable-audit-logging


def test_a_real_run_checks_everything_before_changing_anything(bundle_dir: Path, fake_path: Path) -> None:
    result, calls = run_deploy(bundle_dir, fake_path, audit_off="staging")
    assert result.returncode == 1
    assert "audit logging is off on: us-east-1/staging" in result.stderr and "--enable-audit-logging" in result.stderr
    assert "aws eks describe-cluster --region us-east-1 --name staging" in "\n".join(calls)
    assert not [c for c in calls if any(m in c for m in MUTATING)], calls

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
        "python -m venv .venv",
        "python -m pip install --quiet -r requirements.txt",
        "python -m pip install --quiet --no-compile --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 "
        "--implementation cp --python-version 3.12 --only-binary=:all: --target build/lambda-deps "
        "-r requirements-lambda.txt",
        "npm ci --no-audit --no-fund --loglevel=error",
        f"npx --no-install cdk bootstrap aws://{ACCOUNT}/eu-west-1",  # us-east-1 is bootstrapped already
        # staging is off and its region leaves audit logging to us; eu-prod's stack turns it on itself
        "aws eks update-cluster-config --region us-east-1 --name staging --logging "
        '{"clusterLogging":[{"types":["audit"],"enabled":true}]} --query update.id --output text',
        "npx --no-install cdk deploy --all --require-approval broadening -c config=eksight.config.json",
    ]
    first_change = calls.index(changes[0])
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


# --- resource preview by synthesis (slow: the real CDK app, ~15-40 s) ---------------------------------------------


@pytest.mark.slow
def test_preview_synthesizes_the_stacks_and_summarises_them(server: wizard.WizardServer) -> None:
    if not (ROOT / "build" / "lambda-deps" / ".installed").exists():
        pytest.fail("the Lambda dependencies are not built: run make install")
    config = {"name_prefix": "acme", "regions": {"eu-west-1": {"clusters": ["eu-prod", "eu-batch"]}}}
    tree_config = ROOT / "eksight.config.json"
    before = tree_config.read_bytes() if tree_config.exists() else None
    status, result = post_json(server, "/api/preview", {"config": config})
    assert status == 200 and result["ok"] is True, result
    assert [s["name"] for s in result["stacks"]] == ["acme-ingestion-eu-west-1", "acme-detection-eu-west-1"]
    ingestion = result["stacks"][0]
    assert ingestion["clusters"] == ["eu-prod", "eu-batch"]
    assert ingestion["resource_types"]["AWS::KinesisFirehose::DeliveryStream"] == 2
    assert ingestion["resource_types"]["AWS::Logs::SubscriptionFilter"] == 2
    assert dict(ingestion["lines"])["key"] == "new KMS key, rotation every 365 d, deletion window 30 d"
    assert result["stacks"][1]["resource_types"]["AWS::Events::EventBus"] == 1
    # synthesized from a temporary copy of the config, not from the tree's own
    assert (tree_config.read_bytes() if tree_config.exists() else None) == before
