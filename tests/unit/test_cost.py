"""The cost model (bench/cost.py): bytes measured from CloudWatch envelopes, prices applied per resource, and
docs/cost.md generated from the reference measurement."""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
from datetime import date

import pytest

from bench import cost

PRICES = json.loads(cost.PRICES_FILE.read_text())["prices"]


def envelope(messages: list[str], kind: str = "DATA_MESSAGE") -> bytes:
    events = [{"id": str(i), "timestamp": 0, "message": m} for i, m in enumerate(messages)]
    return json.dumps({"messageType": kind, "logEvents": events}).encode()


def test_every_price_names_its_source_and_the_date_it_was_written_down() -> None:
    for name, entry in PRICES.items():
        assert entry["usd"] > 0 and entry["source"].startswith("https://"), name
        date.fromisoformat(entry["as_of"])
        assert entry["checked"] is None or date.fromisoformat(entry["checked"]) <= date.today()


def test_payload_bytes_counts_audit_events_and_rounds_each_payload_up_to_5_kb() -> None:
    # Firehose's part file: two DATA_MESSAGE payloads (3 and 1 events) and a control message, as gzip members
    part = b"".join(
        gzip.compress(e)
        for e in (
            envelope(["a" * 100, "b" * 100, "c" * 100]),
            envelope(["x" * 40]),
            envelope(["hi"], "CONTROL_MESSAGE"),
        )
    )
    raw, billed, archived = cost.payload_bytes([part])
    assert raw == pytest.approx(340 / 4)
    assert billed == pytest.approx(2 * 5120 / 4)  # two small payloads, 5 KB each
    assert archived == pytest.approx(len(part) / 4)


def test_costs_follow_the_prices_and_scale_with_what_was_measured() -> None:
    measured = cost.reference()
    base = cost.monthly(measured)
    events = measured.rate * 30 * 86400
    # DynamoDB: measured units plus the idempotency record of each object
    objects = events / measured.events_per_object
    units = events / 1000 * measured.wru_per_1k + objects * cost.IDEMPOTENCY_WRU_PER_OBJECT
    expected = units / 1e6 * PRICES["dynamodb_wru_m"]["usd"] + events / 1000 * measured.rru_per_1k / 1e6 * 0.125
    assert base["dynamodb"] == pytest.approx(expected)
    # twice the detector time: twice the GB-seconds; more memory (up to a full vCPU) costs nothing more
    slower = cost.monthly(replace(measured, lambda_ms_per_event=2 * measured.lambda_ms_per_event))
    requests = objects / 1e6 * PRICES["lambda_request_m"]["usd"]
    assert slower["lambda"] - requests == pytest.approx(2 * (base["lambda"] - requests))
    assert cost.monthly(replace(measured, memory_mb=1536))["lambda"] == pytest.approx(base["lambda"])
    # no findings: no EventBridge or Security Hub cost
    quiet = cost.monthly(replace(measured, findings_per_million=0, forwarded_per_million=0))
    assert quiet["eventbridge"] == quiet["securityhub"] == 0


def test_guardduty_and_cloudwatch_ingestion_are_reported_beside_eksight_not_in_it() -> None:
    result = cost.summary(cost.reference())
    assert result["guardduty_per_million"] == 1.60
    assert result["cost_per_million"] == pytest.approx(sum(result["per_million"].values()))
    raw = cost.reference().raw_bytes_per_event
    assert result["cloudwatch_ingest_per_million"] == pytest.approx((raw + 26) / 1000 * 0.50)


def test_docs_cost_md_is_generated_from_the_reference_measurement() -> None:
    text = cost.DOC.read_text()
    generated = text[text.index(cost.BEGIN) + len(cost.BEGIN) : text.index(cost.END)].strip()
    assert generated == cost.render(cost.summary(cost.reference())).strip(), (
        "docs/cost.md is out of date: run `python -m bench.cost --update-docs`"
    )
