"""A realistic EKS cluster simulator: control-plane audit logs with labelled attacks and labelled benign novelty.

`generate(Config(out=..., days=..., seed=...))` writes, into `out`:

* ``audit.jsonl.gz`` — audit.k8s.io/v1 events, one per line, in stageTimestamp order;
* ``cwl/part-NNNNN.gz`` — the same events as CloudWatch Logs subscription payloads, as Firehose stores them;
* ``labels.json`` — the scenarios' and hard negatives' auditIDs, in the schema of the shared dev-scenarios set.

Same arguments, same bytes. See docs/simulator.md for what is modelled and how to use it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from eksight.tools.simulator.attacks import CATALOGUE, Attacks, Scenario, select
from eksight.tools.simulator.model import Config, World
from eksight.tools.simulator.novelty import HARD_NEGATIVES

__all__ = ["CATALOGUE", "HARD_NEGATIVES", "Config", "Scenario", "Summary", "generate"]


@dataclass
class Summary:
    out: Path
    events: int
    seconds: float
    bytes_json: int
    bytes_gz: int
    cwl_parts: int
    scenarios: int
    hard_negatives: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def generate(cfg: Config) -> Summary:
    from eksight.tools.simulator import novelty
    from eksight.tools.simulator.addons import Addons
    from eksight.tools.simulator.apps import Apps
    from eksight.tools.simulator.ci import Delivery
    from eksight.tools.simulator.controlplane import ControlPlane
    from eksight.tools.simulator.emit import Emitter
    from eksight.tools.simulator.nodes import Fleet
    from eksight.tools.simulator.output import Outputs
    from eksight.tools.simulator.people import People
    from eksight.tools.simulator.pods import Pods
    from eksight.tools.simulator.subtle import Drift
    from eksight.tools.simulator.util import HOUR, MINUTE, iso

    began = time.perf_counter()
    scenarios = select(cfg.attacks)  # validate before writing anything
    if cfg.days <= 0 or cfg.scale <= 0:
        raise ValueError("--days and --scale must be positive")
    world = World(cfg)
    outputs = Outputs(cfg.out, cfg.seed, world.account, world.cluster, world.audit_streams, cfg.cwl)
    emitter = world.emitter = Emitter(cfg.seed, world.start, world.end, outputs.write)
    emitter.count_after(world.learning_end)
    novelty.plan(world)
    w = world
    w.control = ControlPlane(w)
    w.pods = pods = Pods(w)
    w.addons = Addons(w, pods)
    w.apps = Apps(w, pods)
    for app in w.all_apps():
        w.apps.deploy_for(app)
    w.fleet = Fleet(w)
    w.people = People(w)
    w.delivery = Delivery(w)
    novelty.Novelty(w).attach()
    if cfg.drift:
        Drift(w).attach()
    attacks = Attacks(w, scenarios)
    attacks.attach()
    w.control.start()
    w.fleet.start()
    w.addons.start()
    w.apps.start()
    w.people.start()
    w.delivery.start()
    try:
        w.run(MINUTE if w.full else HOUR)
    finally:
        outputs.close()

    scenario_labels = [
        {
            "id": s.id,
            "name": s.name,
            "kind": s.kind,
            "mitre": s.mitre,
            "auditIDs": emitter.labels[s.id],
            "start": iso(emitter.first[s.id]),
        }
        for s in attacks.scenarios
        if emitter.labels.get(s.id)
    ]
    hard_negative_labels = [
        {"name": name, "auditIDs": emitter.labels[name]} for name in HARD_NEGATIVES if emitter.labels.get(name)
    ]
    labels = {
        "cluster": w.cluster,
        "account": w.account,
        "region": w.region,
        "seed": cfg.seed,
        "scenario_set": cfg.attacks,
        "scale": cfg.scale,
        "drift": cfg.drift,
        "start": iso(w.start),
        "end": iso(w.end),
        "learning_end": iso(w.learning_end),
        "event_count": emitter.count,
        "benign_event_count": emitter.count
        - sum(n for tag, n in emitter.count_by_tag.items() if tag in {s.id for s in CATALOGUE}),
        "test_window_benign_event_count": emitter.rr_after[w.learning_end],
        "scenarios": scenario_labels,
        "hard_negatives": hard_negative_labels,
    }
    (cfg.out / "labels.json").write_text(json.dumps(labels, indent=1) + "\n")
    return Summary(
        cfg.out,
        emitter.count,
        time.perf_counter() - began,
        outputs.bytes,
        (cfg.out / "audit.jsonl.gz").stat().st_size,
        outputs.cwl.parts if outputs.cwl else 0,
        len(scenario_labels),
        len(hard_negative_labels),
    )
