"""The findings console end to end in headless Chromium: a small simulated cluster with two attacks, replayed
by the CLI into a findings file, opened with the simulator's CloudWatch Logs parts as the archive. Filter to
HIGH, open an attack's finding, see its evidence, plots and timeline; a hostile principal name renders as
text. Screenshots: test-artifacts/console-list.png, console-finding.png. Fails (does not skip) when Chromium is
missing: `make browser` installs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Dialog, Page, expect, sync_playwright

from eksight.tools.console import source as findings_source
from eksight.tools.console.api import Console
from eksight.tools.console.archive import ArchiveIndex
from eksight.tools.setup import wizard
from eksight.tools.simulator import Config, generate

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
ATTACKS = "privileged_hostpath_pod_escape,anonymous_api_access"
HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A simulator run (8 days: 7 of learning, 1 with the attacks) replayed into a findings file, plus one
    finding whose principal and title are markup."""
    out = tmp_path_factory.mktemp("sim")
    generate(Config(out=out, days=8, scale=0.15, seed=5, attacks=ATTACKS))
    labels = json.loads((out / "labels.json").read_text())
    findings = out / "findings.jsonl"
    subprocess.run(
        [
            *(sys.executable, "-m", "eksight.tools.cli", "replay", str(out / "audit.jsonl.gz"), "-o", str(findings)),
            *("--cluster", labels["cluster"], "--account", labels["account"], "--region", labels["region"]),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    rows = [json.loads(line) for line in findings.read_text().splitlines() if line.strip()]
    hostile = dict(rows[0], id="hostile-finding", severity="HIGH", title=f"{HOSTILE} title", evidence=[])
    hostile["suppressed_by"] = f"EKS-1 (all principals): {HOSTILE}"  # suppressed, and its reason is markup too
    hostile["principal"] = {"name": HOSTILE, "kind": "user", "key": f"user:{HOSTILE}"}
    with findings.open("a") as stream:
        stream.write(json.dumps(hostile) + "\n")
    attack_ids = {a for scenario in labels["scenarios"] for a in scenario["auditIDs"]}
    attack = next(f for f in rows if f["severity"] == "HIGH" and attack_ids.intersection(f["evidence"]))
    return {"out": out, "findings": findings, "rows": rows, "attack": attack}


@pytest.fixture
def server(simulated: dict[str, Any]) -> Iterator[wizard.WizardServer]:
    console = Console(findings_source.from_file(simulated["findings"]), ArchiveIndex([simulated["out"] / "cwl"]))
    running = wizard.WizardServer(0, console=console)
    console.start()
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    yield running
    running.shutdown()
    running.server_close()
    thread.join(timeout=5)


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"Chromium not found at {CHROMIUM}: run `make browser` (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        opened = browser.new_page(viewport={"width": 1440, "height": 900}, locale="en-US")
        opened.set_default_timeout(20_000)
        yield opened
        browser.close()


def test_filter_open_an_attack_finding_and_see_its_evidence_and_timeline(
    server: wizard.WizardServer, page: Page, simulated: dict[str, Any]
) -> None:
    problems: list[str] = []
    dialogs: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))

    def on_dialog(dialog: Dialog) -> None:  # an alert() would mean injected markup ran
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(server.console_url)
    rows = page.locator("#findings tbody tr")
    expect(rows).to_have_count(min(len(simulated["rows"]) + 1, findings_source.DEFAULT_PAGE))  # one page at most

    page.select_option("#f-severity", "HIGH")
    high = [f for f in simulated["rows"] if f["severity"] == "HIGH"]
    expect(rows).to_have_count(len(high) + 1)  # and the hostile one
    expect(page.locator("#findings tbody .sev")).to_have_text(["HIGH"] * (len(high) + 1))

    # the hostile principal is text: no <img> made from it, no script run
    hostile_row = page.locator("#findings tbody tr", has_text=HOSTILE)
    expect(hostile_row.locator(".principal")).to_have_text(HOSTILE)
    expect(hostile_row).to_have_class("suppressed")
    expect(hostile_row.locator(".suppressed-by")).to_have_text(f"Suppressed: EKS-1 (all principals): {HOSTILE}")
    expect(page.locator("#findings tbody tr.suppressed")).to_have_count(1)  # the replay suppresses nothing
    expect(page.locator("#findings img")).to_have_count(0)
    expect(page.locator("#archive-info")).to_contain_text("Audit archive:", timeout=120_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console-list.png"))

    attack = simulated["attack"]
    page.locator(f'#findings tbody tr[data-id="{attack["id"]}"] button').click()
    expect(page.locator("#detail-title")).to_contain_text(attack["title"])
    evidence = page.locator("[data-role=evidence] tbody tr")
    expect(evidence).to_have_count(len(attack["evidence"]), timeout=60_000)
    for audit_id in attack["evidence"]:
        expect(page.locator("[data-role=evidence]")).to_contain_text(audit_id)
    expect(page.locator("[data-role=timeline] li.during").first).to_be_visible()
    expect(page.locator("[data-role=activity-chart] canvas")).to_have_count(1)  # uPlot drew the activity plot
    heatmap_label = page.locator("[data-role=heatmap] canvas").get_attribute("aria-label") or ""
    assert heatmap_label.startswith("Requests by weekday and hour, UTC: ") and " 0 in all" not in heatmap_label
    page.screenshot(path=str(ARTIFACTS / "console-finding.png"), full_page=True)

    # the hostile finding opens as text too
    hostile_row.locator("button").click()
    expect(page.locator("#detail-title")).to_contain_text(f"{HOSTILE} title")
    expect(page.locator("#detail-body .facts")).to_contain_text(f"Suppressed byEKS-1 (all principals): {HOSTILE}")
    expect(page.locator("#detail img")).to_have_count(0)
    assert dialogs == []
    assert problems == []


def test_an_anomaly_finding_shows_its_baseline_and_feature_frequencies(
    server: wizard.WizardServer, page: Page, simulated: dict[str, Any]
) -> None:
    anomaly = next(f for f in simulated["rows"] if (f.get("details") or {}).get("anomaly"))
    page.goto(server.console_url)
    page.locator(f'#findings tbody tr[data-id="{anomaly["id"]}"] button').click()
    baseline = f"Baseline: {anomaly['details']['anomaly']['baseline']}"
    expect(page.locator("[data-role=baseline]")).to_have_text(baseline, timeout=120_000)  # after the archive loads
    profiles = [p["profile"] for p in anomaly["details"]["anomaly"]["profile"].values()]
    expect(page.locator("[data-role=features] .profile")).to_have_count(len(profiles))
    for profile in set(profiles):
        expect(page.locator(f"[data-role=features] .profile.p-{profile}")).to_have_count(profiles.count(profile))
