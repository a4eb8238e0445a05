"""People: platform admins, SREs and developers signing in through IAM Identity Center (AWSReservedSSO_* roles,
the session named after the person), each with habits — time zone (with daylight saving), working hours and
days, team namespace, kubectl version and OS, k9s/Lens/Helm, whether they exec or port-forward, and the
networks they come from (office egress, home ISP address, company VPN). Developers are bound namespace by
namespace, so they run into the occasional 403 (forgotten -n, nodes, another team's namespace).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from eksight.tools.simulator.emit import Who, rbac_reason, user_fragment
from eksight.tools.simulator.kubectl import Authorize, Client
from eksight.tools.simulator.model import Team, World
from eksight.tools.simulator.util import (
    DAY,
    HOUR,
    ZONES,
    dst_transitions,
    hexstr,
    local_midnight,
    role_id,
    seeded,
    session_key,
    utc_offset,
    weekday,
)

FIRST = (
    "amira",
    "ben",
    "carla",
    "deepak",
    "elena",
    "farid",
    "grace",
    "hiro",
    "ines",
    "jonas",
    "kwame",
    "lena",
    "marco",
    "nadia",
    "oscar",
    "priya",
    "quinn",
    "rosa",
    "sven",
    "tara",
    "umar",
    "vera",
    "wei",
    "yusuf",
    "zoe",
    "aidan",
    "bianca",
    "chen",
    "dara",
    "emil",
    "fatima",
    "gustavo",
    "hana",
    "ivan",
    "julia",
    "kofi",
    "liam",
)
LAST = (
    "novak",
    "okafor",
    "silva",
    "tanaka",
    "weber",
    "kowalski",
    "haddad",
    "larsen",
    "moreau",
    "patel",
    "rossi",
    "schmidt",
    "nguyen",
    "garcia",
    "ivanova",
    "mensah",
    "lindqvist",
    "costa",
    "brennan",
    "sato",
    "yilmaz",
    "fischer",
)
KUBECTL = {
    "v1.28.9": "587f5fe",
    "v1.29.4": "55019c8",
    "v1.29.6": "062798d",
    "v1.30.2": "3968350",
    "v1.30.3": "6fc0a69",
    "v1.31.0": "9edcffc",
    "v1.31.1": "948afe5",
}
OSES = (
    "darwin/arm64",
    "darwin/arm64",
    "darwin/arm64",
    "darwin/arm64",
    "darwin/amd64",
    "linux/amd64",
    "linux/amd64",
    "windows/amd64",
)
CITIES = {
    "America/New_York": "nyc",
    "America/Chicago": "chi",
    "America/Los_Angeles": "sfo",
    "Europe/Berlin": "ber",
    "Europe/London": "lon",
    "Europe/Warsaw": "waw",
    "Asia/Kolkata": "blr",
}


@dataclass(eq=False)
class SsoRole:
    name: str
    role_id: str
    policy: str  # admin | view | team


@dataclass(eq=False)
class Person:
    name: str
    email: str
    kind: str  # admin | sre | dev
    team: Team | None
    zone: str
    start_hour: float
    hours: float
    weekend: float
    kubectl: str
    os: str
    sso: SsoRole
    home_ip: str
    k9s: float = 0.0
    lens: float = 0.0
    helm: float = 0.0
    execs: bool = False
    port_forwards: bool = False
    oncall: SsoRole | None = None
    active_from: int = 0
    readonly: bool = False
    changes: list[tuple[int, str, str, int]] = field(default_factory=list)  # (from, kubectl, tag, tag until)
    travel: tuple[int, int, str, str] | None = None  # (from, until, zone, ip)
    dst_tag: tuple[int, int] | None = None
    touched: set[str] = field(default_factory=set)
    _keys: dict[int, str] = field(default_factory=dict)

    @property
    def own_team(self) -> Team:
        """A developer's team (admins and SREs belong to none)."""
        if self.team is None:
            raise ValueError(f"{self.name} ({self.kind}) has no team")
        return self.team

    def kubectl_ua(self, t: int) -> str:
        version = self.kubectl
        for since, newer, _tag, _until in self.changes:
            if t >= since:
                version = newer
        return f"kubectl/{version} ({self.os}) kubernetes/{KUBECTL[version]}"


class People:
    def __init__(self, world: World) -> None:
        self.w = world
        self.rng = rng = seeded(world.seed, "people")
        hexes = {name: hexstr(rng, 16) for name in ("PlatformAdmin", "SRE-ReadOnly", "SRE-OnCall")}
        self.roles = {
            name: SsoRole(
                f"AWSReservedSSO_{name}_{suffix}", role_id(rng), "view" if name == "SRE-ReadOnly" else "admin"
            )
            for name, suffix in hexes.items()
        }
        for team in world.teams:
            self.roles[team.name] = SsoRole(
                f"AWSReservedSSO_Dev-{team.name.title().replace('-', '')}_{hexstr(rng, 16)}", role_id(rng), "team"
            )
        self.domain = rng.choice(("acmeretail.com", "globex.io", "northwind.dev", "initech.com"))

        def block(ranges: Sequence[tuple[int, int, int]] | None = None) -> list[str]:
            net = world.public_ip(rng, ranges).rpartition(".")[0]  # egress NAT addresses in one /24
            return [f"{net}.{host}" for host in rng.sample(range(2, 254), 2)]

        self.offices = {city: block() for city in CITIES.values()}
        self.vpn = block(((52, 0, 95), (3, 80, 239)))
        self.vpn_change: tuple[int, list[str]] | None = None  # (from, new egress addresses): benign drift
        self.people: list[Person] = []
        used: set[str] = set()
        scale = world.scale
        plan = (
            ["admin"] * max(1, round(2 * scale)) + ["sre"] * max(1, round(scale)) + ["dev"] * max(3, round(5 * scale))
        )
        for index, kind in enumerate(plan):
            dev_team = world.teams[index % len(world.teams)] if kind == "dev" else None
            self.people.append(self.new_person(kind, dev_team, used))
        abstainer = [p for p in self.people if p.kind == "dev"][-1]  # at least one developer never execs
        abstainer.execs = abstainer.port_forwards = False
        abstainer.k9s = 0.0

    def new_person(self, kind: str, team: Team | None, used: set[str] | None = None, zone: str = "") -> Person:
        rng = self.rng
        used = used if used is not None else {p.name for p in self.people}
        for attempt in range(10_000):  # large scales run out of pairs: namesakes get a number
            name = f"{rng.choice(FIRST)}.{rng.choice(LAST)}" + (str(attempt // 40) if attempt >= 40 else "")
            if name not in used:
                used.add(name)
                break
        if not zone:
            zone = (
                team.zone
                if team is not None and rng.random() < 0.8
                else rng.choice(
                    (
                        "America/New_York",
                        "Europe/Berlin",
                        "Europe/London",
                        "America/Chicago",
                        "America/Los_Angeles",
                        "Europe/Warsaw",
                        "Asia/Kolkata",
                    )
                )
            )
        sso = (
            self.roles[team.name]
            if kind == "dev" and team is not None
            else self.roles["PlatformAdmin" if kind == "admin" else "SRE-ReadOnly"]
        )
        return Person(
            name=name,
            email=f"{name}@{self.domain}",
            kind=kind,
            team=team,
            zone=zone,
            start_hour=min(11.0, max(7.0, rng.gauss(9.0, 0.8))),
            hours=rng.uniform(7.5, 9.5),
            weekend=0.08 if kind != "dev" else 0.02,
            kubectl=rng.choice(tuple(KUBECTL)),
            os=rng.choice(OSES),
            sso=sso,
            home_ip=self.w.public_ip(rng),
            k9s=0.35 if rng.random() < 0.35 else 0.0,
            lens=0.5 if rng.random() < 0.1 else 0.0,
            helm=0.15 if kind == "admin" or rng.random() < 0.2 else 0.0,
            execs=rng.random() < (0.6 if kind == "admin" else 0.4 if kind == "dev" else 0.0),
            port_forwards=kind == "dev" and rng.random() < 0.35,
            oncall=self.roles["SRE-OnCall"] if kind == "sre" else None,
        )

    # --- identity ---------------------------------------------------------------------------------------------------
    def who(self, person: Person, t: int, ip: str, ua: str = "", role: SsoRole | None = None) -> Who:
        w = self.w
        role = role or person.sso
        day = (t - w.start) // (10 * HOUR)
        key = person._keys.get(day)
        if key is None:
            key = person._keys[day] = session_key(self.rng)
        session = f"arn:aws:sts::{w.account}:assumed-role/{role.name}/{person.email}"
        groups = (
            ("system:authenticated",)
            if role.policy != "team"
            else (f"{person.own_team.name}-developers", "developers", "system:authenticated")
        )
        extra = {
            "accessKeyId": [key],
            "arn": [session],
            "canonicalArn": [f"arn:aws:iam::{w.account}:role/{role.name}"],
            "principalId": [f"{role.role_id}:{person.email}"],
            "sessionName": [person.email],
        }
        user = user_fragment(session, f"aws-iam-authenticator:{w.account}:{role.role_id}", groups, extra)
        return Who(user, session, ua or person.kubectl_ua(t), ip, self.policy_reason(role, session, "admin"), groups)

    def policy_reason(self, role: SsoRole, username: str, policy: str) -> str:
        name = {"admin": "AmazonEKSClusterAdminPolicy", "view": "AmazonEKSViewPolicy"}[policy]
        policy_arn = f"arn:aws:eks::aws:cluster-access-policy/{name}"
        return (
            f'EKS Access Policy: allowed by ClusterRoleBinding "arn:aws:iam::{self.w.account}:role/{role.name}+'
            f'{policy_arn}" of ClusterRole "{policy_arn}" to User "{username}"'
        )

    def authorizer(self, person: Person, role: SsoRole, username: str) -> Authorize:
        """What the person's role may do: cluster admin, view (no secrets, no exec), or a developer's team
        namespace (edit) plus the legacy cluster-wide `developer-read` role (reads, and `get` of secrets)."""
        admin = self.policy_reason(role, username, "admin") if role.policy == "admin" else ""
        view = self.policy_reason(role, username, "view") if role.policy == "view" else ""
        team = person.team.name if person.team is not None else ""
        read = rbac_reason(
            "ClusterRoleBinding", "developers-read", "ClusterRole", "developer-read", "Group", "developers"
        )

        def authorize(verb: str, resource: str, namespace: str, sub: str) -> str | None:
            if admin:
                return admin
            reading = verb in ("get", "list", "watch") and sub not in ("exec", "attach", "portforward")
            if view:
                return view if reading and resource != "secrets" else None
            if resource in ("selfsubjectaccessreviews", "selfsubjectrulesreviews"):
                return ""
            if namespace == team:
                if reading and not (resource == "secrets" and verb == "get"):
                    return (
                        read
                        if resource != "secrets"
                        else rbac_reason(
                            "RoleBinding",
                            f"{team}-developers",
                            "ClusterRole",
                            "edit",
                            "Group",
                            f"{team}-developers",
                            team,
                        )
                    )
                return rbac_reason(
                    "RoleBinding", f"{team}-developers", "ClusterRole", "edit", "Group", f"{team}-developers", team
                )
            if resource in ("nodes", "metrics.k8s.io/nodes", "clusterroles", "clusterrolebindings") or not reading:
                return None
            if resource == "secrets" and verb != "get":
                return None
            return read

        return authorize

    def client(
        self,
        person: Person,
        t: int,
        ip: str,
        ua: str = "",
        role: SsoRole | None = None,
        tag: str = "",
        pace: tuple[float, float] = (0.02, 0.15),
    ) -> Client:
        role = role or person.sso
        who = self.who(person, t, ip, ua, role)
        return Client(
            self.w.emitter,
            who,
            t,
            self.rng,
            authorize=self.authorizer(person, role, who.username),
            tag=tag,
            pace=pace,
        )

    # --- days and sessions -----------------------------------------------------------------------------------------
    def start(self) -> None:
        w = self.w
        for person in self.people:
            self._mark_dst(person)
            t = local_midnight(person.zone, w.start)
            while t < w.end:
                w.schedule(max(t, w.start), self._day, person, t)
                t = local_midnight(person.zone, t + 36 * HOUR)
            if person.travel:
                t = person.travel[0]
                while t < min(person.travel[1], w.end):
                    w.schedule(max(t, w.start), self._day, person, t, True)
                    t = local_midnight(person.travel[2], t + 36 * HOUR)

    def _mark_dst(self, person: Person) -> None:
        """A daylight-saving change between the start of the log and its test window shifts the person's hours
        (in UTC) relative to what the learning window saw: label their first days after it."""
        w = self.w
        if not w.test_window or not ZONES[person.zone][1]:
            return
        year = int(w.cfg.start[:4])
        for change in dst_transitions(person.zone, year) or ():
            if w.start < change < w.end and change < w.learning_end + 3 * DAY:
                begin = max(change, w.learning_end)
                person.dst_tag = (begin, begin + 3 * DAY)

    def location(self, person: Person, t: int) -> tuple[str, str]:
        """(zone, source address) for the person's day."""
        if person.travel and person.travel[0] <= t < person.travel[1]:
            return person.travel[2], person.travel[3]
        rng = self.rng
        roll = rng.random()
        if roll < 0.5:
            return person.zone, rng.choice(self.offices[CITIES.get(person.zone, "nyc")])
        if roll < 0.92:
            return person.zone, person.home_ip
        vpn = self.vpn_change[1] if self.vpn_change and t >= self.vpn_change[0] else self.vpn
        return person.zone, rng.choice(vpn)

    def tag_for(self, person: Person, t: int, ip: str = "") -> str:
        if person.travel and person.travel[0] <= t < person.travel[1]:
            return "human_travel_timezone_shift"
        if self.vpn_change and ip in self.vpn_change[1]:
            return "egress_nat_change"
        for since, _version, tag, until in person.changes:
            if since <= t < until:
                return tag
        if person.active_from and t < person.active_from + 2 * DAY:
            return "new_human_readonly"
        if person.dst_tag and person.dst_tag[0] <= t < person.dst_tag[1]:
            return "dst_shift"
        return ""

    def _day(self, t: int, person: Person, midnight: int, away: bool = False) -> None:
        """Plan one local day; days abroad are planned on the destination's calendar (see `start`)."""
        w, rng = self.w, self.rng
        if person.active_from and midnight + DAY < person.active_from:
            return
        travel = person.travel
        if travel and not away and travel[0] <= midnight + 12 * HOUR < travel[1]:
            return
        zone, ip = (travel[2], travel[3]) if away and travel else self.location(person, midnight + 12 * HOUR)
        base = midnight
        local_day = weekday(base + utc_offset(zone, base) + HOUR)
        works = rng.random() < (0.93 if local_day < 5 else person.weekend)
        if works:
            sessions = rng.randrange(2, 6 if person.kind != "dev" else 5)
            for _ in range(sessions):
                hour = person.start_hour + rng.uniform(0, person.hours)
                if 12 <= hour < 13 and rng.random() < 0.6:
                    hour += 1.2
                if rng.random() < 0.04:
                    hour = person.start_hour + person.hours + rng.uniform(1, 4)  # evening catch-up
                at = base + int(hour * HOUR)
                if at >= max(person.active_from, w.start):
                    w.schedule(at, self._session, person, ip, None)
        if person.oncall is not None and rng.random() < 0.12:  # paged at night
            at = base + int(rng.uniform(0.5, 5.5) * HOUR)
            if at >= w.start:
                w.schedule(at, self._session, person, person.home_ip, person.oncall)
        del t

    def _session(self, t: int, person: Person, ip: str, role: SsoRole | None) -> None:
        from eksight.tools.simulator.habits import run_session

        run_session(self, person, t, ip, role)
