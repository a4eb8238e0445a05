"""The simulated cluster: configuration, the discrete-event clock, and the shared topology (account, VPC,
Kubernetes versions, address pools, teams and their applications).

`World` is a discrete-event simulation: components `schedule(t, fn, *args)` actions on a heap; `run` executes
them in time order one window at a time and flushes the events that completed before the window's end.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from eksight.tools.simulator.util import DAY, HOUR, MINUTE, US, git_sha, k8s_suffix, parse_day, seeded, uuid4

if TYPE_CHECKING:
    from eksight.tools.simulator.addons import Addons
    from eksight.tools.simulator.apps import Apps
    from eksight.tools.simulator.ci import Delivery
    from eksight.tools.simulator.controlplane import ControlPlane
    from eksight.tools.simulator.emit import Emitter
    from eksight.tools.simulator.nodes import Fleet
    from eksight.tools.simulator.people import People
    from eksight.tools.simulator.pods import Pods

# Kubernetes minor versions the cluster moves between (control plane, EKS-optimised AMI kubelet, add-ons).
VERSIONS = {
    "1.29": {
        "server": "v1.29.10",
        "commit": "e1d8d8f",
        "kubelet": "v1.29.8-eks-a737599",
        "proxy": "v1.29.7",
        "proxy_commit": "4e5e7e0",
        "ccm": "v1.29.4",
        "ca": "v1.29.4",
        "coredns": "v1.11.1",
    },
    "1.30": {
        "server": "v1.30.6",
        "commit": "a9d6d9b",
        "kubelet": "v1.30.4-eks-a737599",
        "proxy": "v1.30.3",
        "proxy_commit": "6f1a0b1",
        "ccm": "v1.30.3",
        "ca": "v1.30.2",
        "coredns": "v1.11.3",
    },
}

# First octets / ranges of public address space by owner, for plausible (synthetic) addresses.
ISP_OCTETS = (
    24,
    31,
    37,
    46,
    62,
    66,
    68,
    71,
    73,
    76,
    77,
    78,
    79,
    80,
    81,
    82,
    83,
    84,
    85,
    86,
    87,
    88,
    89,
    90,
    91,
    92,
    93,
    94,
    95,
    98,
    99,
    108,
    109,
    151,
    176,
    178,
    188,
    212,
    213,
    217,
)
AZURE_RANGES = ((4, 148, 255), (13, 64, 107), (20, 1, 255), (40, 64, 127), (52, 146, 255), (104, 40, 47))
AWS_RANGES = ((3, 80, 239), (18, 204, 232), (34, 192, 239), (44, 192, 223), (52, 0, 95), (54, 144, 240))
VPS_RANGES = (  # rented-server providers' address blocks (DigitalOcean: /16s its feed announces whole)
    (159, 203, 203),
    (165, 22, 22),
    (167, 99, 99),
    (178, 128, 128),
    (5, 161, 161),
    (95, 216, 216),
    (116, 202, 203),
    (51, 38, 38),
    (45, 32, 32),
    (185, 220, 220),
)

TEAM_WORDS = (
    "payments",
    "checkout",
    "catalog",
    "search",
    "inventory",
    "shipping",
    "notifications",
    "identity",
    "pricing",
    "loyalty",
    "reviews",
    "fulfillment",
    "ledger",
    "messaging",
    "recommendations",
    "billing",
    "orders",
    "accounts",
    "media",
    "analytics",
)
TEAM_SUFFIXES = ("", "-eu", "-api", "-jobs", "-v2", "-internal", "-us", "-data")
APP_WORDS = (
    "api",
    "web",
    "worker",
    "consumer",
    "scheduler",
    "gateway",
    "indexer",
    "sync",
    "grpc",
    "events",
    "admin",
    "reports",
)


@dataclass(frozen=True)
class Config:
    out: Path
    days: float = 14.0
    seed: int = 1
    scale: float = 1.0
    cluster: str = "prod-eks"
    account: str | None = None
    region: str = "us-east-1"
    start: str = "2025-03-03"
    learning_days: float = 7.0
    attacks: str = "all"
    cwl: bool = True
    rate: str = "auto"  # auto (full up to 0.1 day, else sampled) | sampled | full
    drift: bool = False  # benign drift of eksight.tools.simulator.subtle (egress change, night IR, new tool, ...)


@dataclass
class App:
    name: str
    team: Team
    kind: str  # Deployment | StatefulSet
    replicas: int
    image: str
    tag: str
    port: int
    profile: str  # how its pods use the API: none | config | leader | discovery
    irsa: bool
    hpa: bool
    secret: str
    configmap: str
    sidecar: str = ""
    created_at: int | None = None  # apps created during the run (benign novelty)
    tag_label: str = ""

    @property
    def namespace(self) -> str:
        return self.team.namespace

    @property
    def sa(self) -> str:
        return self.name


@dataclass
class Team:
    name: str
    namespace: str
    deployer: str  # gha | argocd
    zone: str
    apps: list[App] = field(default_factory=list)
    cronjobs: list[tuple[str, int, int]] = field(default_factory=list)  # (name, period µs, offset µs)
    created_at: int | None = None


class World:
    # The components, attached by `generate` once the world exists (each of them is built from the world) and
    # before the clock runs.
    emitter: Emitter
    control: ControlPlane
    pods: Pods
    addons: Addons
    apps: Apps
    fleet: Fleet
    people: People
    delivery: Delivery

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.seed = cfg.seed
        self.start = parse_day(cfg.start)
        self.end = self.start + int(cfg.days * DAY)
        self.learning_end = self.start + int(cfg.learning_days * DAY)
        self.test_window = self.learning_end < self.end
        self.full = cfg.rate == "full" or (cfg.rate == "auto" and cfg.days <= 0.1)
        self.scale = cfg.scale
        rng = self.rng = seeded(cfg.seed, "world")
        self.account = cfg.account or str(rng.randrange(100_000_000_000, 999_999_999_999))
        self.region, self.cluster = cfg.region, cfg.cluster
        self.vpc = rng.randrange(0, 250)  # 10.<vpc>.0.0/16
        self.cp_ips = [f"172.16.{rng.randrange(0, 255)}.{rng.randrange(2, 254)}" for _ in range(4)]
        self.eks_public_ips = [self.public_ip(rng, AWS_RANGES) for _ in range(6)]
        self.audit_streams = [f"kube-apiserver-audit-{uuid4(rng).replace('-', '')}" for _ in range(2)]
        self.oidc_id = uuid4(rng).replace("-", "").upper()
        self.upgrade_at: int | None = None  # control plane 1.29 -> 1.30 (benign novelty decides)
        self.node_upgrade_at: int | None = None
        self._heap: list[tuple[int, int, Callable[..., None], tuple[object, ...]]] = []
        self._seq = 0
        self.teams: list[Team] = []
        self.platform_ns = ["kube-system", "argocd", "cert-manager", "monitoring", "external-secrets"]
        self._build_teams()

    # --- clock -------------------------------------------------------------------------------------------------
    def schedule(self, t: int, fn: Callable[..., None], *args: object) -> None:
        if t < self.end:
            self._seq += 1
            heapq.heappush(self._heap, (t, self._seq, fn, args))

    def run(self, window: int) -> None:
        heap, pop = self._heap, heapq.heappop
        edge = self.start
        while edge < self.end:
            edge = min(edge + window, self.end)
            while heap and heap[0][0] < edge:
                t, _, fn, args = pop(heap)
                fn(t, *args)
            self.emitter.flush(edge)
        self.emitter.flush()

    def every(self, real_seconds: float, kind: str = "poll") -> int:
        """The interval (µs) between logged occurrences of a periodic request. `full` keeps real rates; the
        default multi-day mode keeps one in N of the high-rate heartbeats (documented in docs/simulator.md)."""
        real = int(real_seconds * US)
        if self.full:
            return real
        floor = {"lease": 20 * MINUTE, "status": 30 * MINUTE, "poll": 30 * MINUTE}.get(kind)
        if floor is None:  # bulk: informer re-lists, kubelet token refreshes
            return real * 12
        return max(real, floor)

    # --- versions ----------------------------------------------------------------------------------------------
    def minor(self, t: int) -> str:
        return "1.30" if self.upgrade_at is not None and t >= self.upgrade_at else "1.29"

    def version(self, t: int) -> dict[str, str]:
        return VERSIONS[self.minor(t)]

    def cp_ua(self, t: int, binary: str, suffix: str = "") -> str:
        v = self.version(t)
        return f"{binary}/{v['server']} (linux/amd64) kubernetes/{v['commit']}{suffix}"

    # --- addresses -----------------------------------------------------------------------------------------------
    @staticmethod
    def public_ip(rng: random.Random, ranges: Sequence[tuple[int, int, int]] | None = None) -> str:
        if ranges is None:
            return f"{rng.choice(ISP_OCTETS)}.{rng.randrange(1, 255)}.{rng.randrange(0, 256)}.{rng.randrange(1, 255)}"
        first, lo, hi = rng.choice(ranges)
        return f"{first}.{rng.randrange(lo, hi + 1)}.{rng.randrange(0, 256)}.{rng.randrange(1, 255)}"

    def subnet_ip(self, rng: random.Random, subnet: int) -> str:
        """A private address in one of the three /19 node subnets (10.<vpc>.{0,32,64}.0/19)."""
        third = subnet * 32 + rng.randrange(0, 32)
        return f"10.{self.vpc}.{third}.{rng.randrange(4, 255)}"

    @property
    def ecr(self) -> str:
        return f"{self.account}.dkr.ecr.{self.region}.amazonaws.com"

    @property
    def eks_ecr(self) -> str:
        return f"602401143452.dkr.ecr.{self.region}.amazonaws.com"

    # --- teams --------------------------------------------------------------------------------------------------
    def _build_teams(self) -> None:
        rng = seeded(self.seed, "teams")
        count = max(2, round(6 * self.scale))
        names: list[str] = []
        for i in range(count):
            word = TEAM_WORDS[i % len(TEAM_WORDS)]
            names.append(
                word
                + TEAM_SUFFIXES[(i // len(TEAM_WORDS)) % len(TEAM_SUFFIXES)]
                + (
                    str(i // (len(TEAM_WORDS) * len(TEAM_SUFFIXES)) + 1)
                    if i >= len(TEAM_WORDS) * len(TEAM_SUFFIXES)
                    else ""
                )
            )
        rng.shuffle(names)
        zones = (
            "America/New_York",
            "America/New_York",
            "Europe/Berlin",
            "America/Chicago",
            "Europe/London",
            "America/Los_Angeles",
        )
        for i, name in enumerate(names):
            team = Team(name, name, "argocd" if i % 3 == 2 else "gha", zones[i % len(zones)])
            for word in rng.sample(APP_WORDS, rng.randrange(2, 5)):
                team.apps.append(self.new_app(rng, team, word))
            for job in rng.sample(
                ("report-nightly", "cleanup", "sync-catalog", "reindex", "export"), rng.randrange(0, 3)
            ):
                period = {
                    "report-nightly": DAY,
                    "cleanup": HOUR,
                    "sync-catalog": 15 * MINUTE,
                    "reindex": 6 * HOUR,
                    "export": 4 * HOUR,
                }[job]
                team.cronjobs.append((job, period, rng.randrange(0, period) // MINUTE * MINUTE))
            self.teams.append(team)

    def new_app(self, rng: random.Random, team: Team, word: str) -> App:
        stateful = word in ("indexer",) and rng.random() < 0.5
        profile = rng.choices(("none", "config", "leader", "discovery"), (7, 4, 1, 1))[0]
        if word in ("scheduler", "sync") and rng.random() < 0.6:
            profile = "leader"
        sidecar = rng.choice(("", "", "", "envoy", "datadog-agent"))
        return App(
            name=word,
            team=team,
            kind="StatefulSet" if stateful else "Deployment",
            replicas=rng.choice((2, 2, 3, 3, 4, 6)),
            image=f"{self.ecr}/{team.name}/{word}",
            tag=git_sha(rng),
            port=rng.choice((8080, 8080, 3000, 9000, 8443, 50051)),
            profile=profile,
            irsa=rng.random() < 0.5,
            hpa=word in ("api", "web", "gateway", "grpc") and rng.random() < 0.7,
            secret=rng.choice((f"{word}-env", f"{word}-db-credentials", f"{word}-secrets")),
            configmap=f"{word}-config",
            sidecar=sidecar,
        )

    def all_apps(self) -> list[App]:
        return [app for team in self.teams for app in team.apps]


def rs_hash(rng: random.Random) -> str:
    """pod-template-hash: what a ReplicaSet's name and its pods carry."""
    return k8s_suffix(rng, rng.choice((9, 10)))
