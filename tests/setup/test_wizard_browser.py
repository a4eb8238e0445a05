"""`eksight ui` end to end in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright; no browser
download, no network): pick regions, enter clusters, see a validation message next to the field, fix it,
download the bundle and check what it holds; plus an accessibility smoke check. Without Chromium (`make browser`
installs it) the tests are skipped with one line saying so, and fail in CI (CI=true)."""

from __future__ import annotations

import io
import json
import re
import shutil
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect, sync_playwright

from eksight import config as config_module
from eksight.tools.setup import bundle, wizard
from tests.setup.system_tools import require

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
GOOD_BUS = "arn:aws:events:us-east-1:999988887777:event-bus/security-findings"
BAD_BUS = "arn:aws:events:us-east-1:123:bus"


@pytest.fixture
def server() -> Iterator[wizard.WizardServer]:
    running = wizard.WizardServer(0)
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    yield running
    running.shutdown()
    running.server_close()
    thread.join(timeout=5)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BrowserContext]:
    require(Path(CHROMIUM).is_file(), f"Chromium ({CHROMIUM})")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            accept_downloads=True,
            viewport={"width": 1280, "height": 900},
            locale="en-US",
        )
        context.set_default_timeout(15_000)
        yield context
        context.close()


def open_wizard(browser: BrowserContext, url: str) -> tuple[Page, list[str]]:
    page = browser.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(url)
    return page, problems


def accessibility_smoke(page: Page) -> None:
    expect(page.locator("html")).to_have_attribute("lang", "en")
    for role in ("banner", "main", "contentinfo"):
        expect(page.get_by_role(role)).to_have_count(1)
    expect(page.get_by_role("heading", level=1)).to_have_count(1)
    unlabelled = page.evaluate("""() => [...document.querySelectorAll('input, select, textarea')]
        .filter((c) => c.labels.length === 0 && !c.getAttribute('aria-label') && !c.getAttribute('aria-labelledby'))
        .map((c) => c.id || c.outerHTML)""")
    assert unlabelled == []
    dangling = page.evaluate("""() => [...document.querySelectorAll('[aria-describedby]')]
        .flatMap((c) => c.getAttribute('aria-describedby').split(/\\s+/).filter((id) => !document.getElementById(id))
        .map((id) => `${c.id} -> ${id}`))""")
    assert dangling == []
    unnamed_buttons = page.evaluate("""() => [...document.querySelectorAll('button')]
        .filter((b) => !b.textContent.trim() && !b.getAttribute('aria-label')).length""")
    assert unnamed_buttons == 0


def test_wizard_end_to_end(server: wizard.WizardServer, browser: BrowserContext, tmp_path: Path) -> None:
    page, console_errors = open_wizard(browser, server.url)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    accessibility_smoke(page)

    # step 1: a region and its clusters; then another region (the first one is no longer offered there)
    page.get_by_label("AWS region").select_option("eu-west-1")
    page.get_by_label("EKS cluster names").fill("eu-prod, eu-batch")
    page.get_by_role("button", name="+ Add another region").click()
    second_region = page.locator("#r2-region")
    expect(second_region).to_be_focused()
    assert second_region.locator("option[value='eu-west-1']").is_disabled()
    second_region.select_option("us-east-1")
    page.locator("#r2-clusters").fill("prod-api")
    expect(page.locator("#summary")).to_have_text("Ready to deploy: 2 region(s), 3 cluster(s).")

    # an invalid central bus ARN: the message appears next to the field and is its accessible description
    page.get_by_text("Advanced options").click()
    bus = page.get_by_label("Central EventBridge bus ARN")
    bus.fill(BAD_BUS)
    expect(bus).to_have_attribute("aria-invalid", "true")
    error = page.locator("#central-bus-arn-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("malformed EventBridge bus ARN")
    expect(error).to_have_attribute("aria-live", "polite")
    assert bus.evaluate("(el) => el.nextElementSibling.id") == "central-bus-arn-error"
    expect(bus).to_have_accessible_description(
        re.compile(
            r"malformed EventBridge bus ARN .* Fix: use "
            r"arn:aws:events:REGION:ACCOUNT:event-bus/BUS_NAME"
        )
    )
    expect(page.locator("#summary")).to_have_text("1 problem to fix before downloading.")
    expect(page.locator("#summary")).to_have_attribute("aria-live", "polite")
    expect(page.locator("#problem-list a")).to_have_text("Central EventBridge bus ARN")

    # no download while it is invalid: the focus goes to the field instead
    page.get_by_label("Central EventBridge bus ARN").blur()
    page.get_by_role("button", name="Download CloudShell bundle").click()
    expect(page.locator("#download-status")).to_have_text("Fix the problems shown first.")
    expect(bus).to_be_focused()

    # fixed: the message goes away
    bus.fill(GOOD_BUS)
    expect(bus).not_to_have_attribute("aria-invalid", "true")
    expect(error).to_be_hidden()
    expect(page.locator("#summary")).to_have_text("Ready to deploy: 2 region(s), 3 cluster(s).")
    expect(page.locator("#resources h4")).to_have_text(
        [
            "eksight-ingestion-eu-west-1",
            "eksight-detection-eu-west-1",
            "eksight-ingestion-us-east-1",
            "eksight-detection-us-east-1",
        ]
    )
    expect(page.locator("#command")).to_have_text(bundle.CLOUDSHELL_COMMAND)

    with page.expect_download() as config_download:
        page.get_by_role("button", name="Download eksight.config.json").click()
    assert config_download.value.suggested_filename == "eksight.config.json"
    downloaded_config = json.loads(Path(config_download.value.path()).read_text())

    with page.expect_download() as bundle_download:
        page.get_by_role("button", name="Download CloudShell bundle").click()
    assert bundle_download.value.suggested_filename == "eksight-bundle.tar.gz"
    expect(page.locator("#download-status")).to_contain_text("Downloaded eksight-bundle.tar.gz")
    data = Path(bundle_download.value.path()).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        names = tar.getnames()
        assert {
            "deploy.sh",
            "eksight.config.json",
            "app.py",
            "cdk.json",
            "package-lock.json",
            "requirements.txt",
            "eksight/config/__init__.py",
            "stacks/app_builder.py",
            "lambdas/detector/handler.py",
        } <= set(names)
        assert not [
            n for n in names if {".venv", "node_modules", "cdk.out", "tests", "__pycache__", ".git"} & set(n.split("/"))
        ]
        tar.extractall(tmp_path / "bundle", filter="data")
    shipped = json.loads((tmp_path / "bundle" / "eksight.config.json").read_text())
    assert (
        shipped
        == downloaded_config
        == {
            "$schema": "./schema/eksight.config.schema.json",
            "defaults": {"findings": {"central_bus_arn": GOOD_BUS}},
            "regions": {"eu-west-1": {"clusters": ["eu-prod", "eu-batch"]}, "us-east-1": {"clusters": ["prod-api"]}},
        }
    )
    deployment = config_module.load(tmp_path / "bundle" / "eksight.config.json")
    assert [r.region for r in deployment.regions] == ["eu-west-1", "us-east-1"]

    accessibility_smoke(page)  # the added region and the shown messages too
    ARTIFACTS.mkdir(exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / "wizard.png"), full_page=True)
    assert console_errors == []  # no script errors, no Content-Security-Policy violations


def test_without_the_session_key_the_page_says_what_to_open(
    server: wizard.WizardServer, browser: BrowserContext
) -> None:
    page, _ = open_wizard(browser, server.url.split("#")[0])
    alert = page.get_by_role("alert")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("Open the address printed by eksight ui")
    expect(page.get_by_role("button", name="Download CloudShell bundle")).to_be_disabled()


@pytest.mark.slow
def test_preview_lists_what_each_synthesized_stack_creates(
    server: wizard.WizardServer, browser: BrowserContext
) -> None:
    page, console_errors = open_wizard(browser, server.url)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    page.get_by_label("AWS region").select_option("eu-west-1")
    clusters = page.get_by_label("EKS cluster names")
    clusters.fill("eu-prod, eu-batch")
    expect(page.locator("#summary")).to_have_text("Ready to deploy: 1 region(s), 2 cluster(s).")
    ingestion = page.locator("#resources .stack").filter(has_text="eksight-ingestion-eu-west-1")
    expect(ingestion).to_contain_text("Preview the resources to see what this stack creates.")

    page.get_by_role("button", name="Preview resources").click()
    expect(page.locator("#synth-output .summary.ok")).to_contain_text("2 stacks synthesized in", timeout=240_000)
    # the template's own settings: the defaults' buffering, one stream per cluster, the clusters' filters
    delivery = config_module.RegionOptions.model_validate({}).delivery
    streams = ingestion.locator("dt", has_text="stream").locator("xpath=following-sibling::dd[1]")
    expect(streams).to_have_count(2)
    for index in range(2):
        expect(streams.nth(index)).to_contain_text(
            f"[{delivery.buffering_interval_seconds} s / {delivery.buffering_size_mib} MiB, "
        )
    expect(ingestion.locator("dd").first).to_have_text("eu-prod, eu-batch  (audit logging: must already be on)")
    detection = page.locator("#resources .stack").filter(has_text="eksight-detection-eu-west-1")
    expect(detection.locator("dt")).to_contain_text(["detector", "baselines", "bus"])

    # a changed setting makes the preview stale; changing it back shows it again (same config file)
    clusters.fill("eu-prod")
    expect(page.locator("#synth-output")).to_have_text("The settings changed: preview the resources again.")
    expect(ingestion).to_contain_text("Preview the resources to see what this stack creates.")
    clusters.fill("eu-prod, eu-batch")
    expect(streams).to_have_count(2)
    assert console_errors == []
