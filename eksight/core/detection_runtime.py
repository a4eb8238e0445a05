"""The `detection` options as the detector Lambda reads them at cold start: msgspec structs, so the function never
imports pydantic (about 60 ms of its cold start, model schemas included).

`eksight.core.detection_options` (pydantic) stays the one definition of the options: the stack validates the
deployment's section with it and ships the result (stacks/constructs/detector_function.py). The structs here have
the same fields, defaults and constraints (tests/unit/test_detection_runtime.py checks them against the pydantic
models) and share its checks (`network_problem`, `suppression_scope_problem`, `duplicate_suppressions_problem`,
the `SuppressionMethods`), so what the function adds at run time — a ``LEARNING_DAYS`` override, the lists of a
networks object — is validated like the config's own. The one check left out is the rule ids' (it imports every
rule): the shipped file was checked against the same rules when the asset was built.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeAlias

import msgspec

if TYPE_CHECKING:
    from eksight.core.detection_options import DetectionOptions

MAX_NETWORKS = 10_000  # per list: the lists travel in the Lambda's asset and are indexed at cold start
MAX_SUPPRESSIONS = 1_000
LEARNING_DAYS_DEFAULT, LEARNING_DAYS_MAX = 7, 90
BUCKET_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
OBJECT_KEY_PATTERN = r"^[^*?]+$"  # IAM reads * and ? as wildcards: the detector is granted exactly this object
OBJECT_KEY_MAX = 1024


# ---- checks shared with the pydantic models ---------------------------------------------------------------------
def network_problem(entries: Sequence[str]) -> str | None:
    """The message for entries that are not IP addresses or CIDRs, or None when all are."""
    bad = [entry for entry in entries if not _is_network(entry)]
    if not bad:
        return None
    shown = ", ".join(repr(entry) for entry in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
    return f"not an IP address or CIDR: {shown}. Fix: write e.g. 203.0.113.7 or 198.51.100.0/24"


def _is_network(entry: str) -> bool:
    try:
        ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False
    return True


def blank_reason_problem(reason: str) -> str | None:
    return "the reason is blank. Fix: say why these findings are expected" if not reason.strip() else None


def suppression_scope_problem(rule: str, principal: str, namespace: str, all_principals: bool) -> str | None:
    """Rule-wide entries must say so (`all_principals`), and only they may."""
    if all_principals and (principal or namespace):
        return "all_principals is for rule-wide entries. Fix: drop it, or drop principal/namespace"
    narrowed = any(glob.strip("*") for glob in (principal, namespace))  # "*" alone narrows nothing
    if not (all_principals or narrowed):
        return (
            f"suppressing {rule} for everyone needs all_principals: true. Fix: give a principal or "
            "namespace, or set all_principals"
        )
    return None


def duplicate_suppressions_problem(entries: Sequence[SuppressionMethods]) -> str | None:
    repeated = [scope for scope, n in Counter(entry.scope for entry in entries).items() if n > 1]
    if not repeated:
        return None
    labels = ", ".join(entry.label for entry in entries if entry.scope in repeated)
    return f"duplicate suppressions: {labels}. Fix: keep one entry for each rule/principal/namespace"


class SuppressionMethods:
    """What a suppression entry says, for the pydantic model and the struct alike (mixed into both)."""

    __slots__ = ()
    if TYPE_CHECKING:  # declared by the classes it is mixed into (annotations here would become fields there)
        rule: str
        principal: str
        namespace: str
        expires: date | None
        reason: str

    @property
    def scope(self) -> tuple[str, str, str]:
        """What makes two entries the same entry (reason and expiry don't)."""
        return (self.rule, self.principal, self.namespace)

    @property
    def label(self) -> str:
        """The entry in words, e.g. ``EKS-102 principal=sa:ci/deployer namespace=prod``."""
        parts = [self.rule]
        parts += [f"principal={self.principal}"] if self.principal else []
        parts += [f"namespace={self.namespace}"] if self.namespace else []
        return " ".join(parts if len(parts) > 1 else [*parts, "(all principals)"])

    def expired(self, at: float | date) -> bool:
        """Whether the entry no longer applies at `at` (epoch seconds of event time, or a calendar day)."""
        if self.expires is None:
            return False
        day = at if isinstance(at, date) else datetime.fromtimestamp(at, UTC).date()
        return day >= self.expires


# ---- the structs (strict like the models: unknown fields and type coercions are errors) ----------------------------
Networks = Annotated[list[str], msgspec.Meta(max_length=MAX_NETWORKS)]


class RuntimeAllowSpec(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    principals: list[str] = []
    namespaces: list[str] = []
    images: list[str] = []


class RuntimeSuppression(msgspec.Struct, SuppressionMethods, forbid_unknown_fields=True, frozen=True, kw_only=True):
    rule: str
    principal: str = ""
    namespace: str = ""
    all_principals: bool = False
    reason: Annotated[str, msgspec.Meta(min_length=1)]
    expires: date | None = None
    finding: str = ""

    def __post_init__(self) -> None:
        problem = blank_reason_problem(self.reason) or suppression_scope_problem(
            self.rule, self.principal, self.namespace, self.all_principals
        )
        if problem:
            raise ValueError(problem)


class RuntimeNetworksObject(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    bucket: Annotated[str, msgspec.Meta(pattern=BUCKET_PATTERN)]
    key: Annotated[str, msgspec.Meta(min_length=1, max_length=OBJECT_KEY_MAX, pattern=OBJECT_KEY_PATTERN)]


class RuntimeDetectionOptions(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    allow: RuntimeAllowSpec = RuntimeAllowSpec()
    learning_days: Annotated[int, msgspec.Meta(ge=0, le=LEARNING_DAYS_MAX)] = LEARNING_DAYS_DEFAULT
    rule_allow: dict[str, RuntimeAllowSpec] = {}
    threat_networks: Networks = []
    trusted_networks: Networks = []
    networks_object: RuntimeNetworksObject | None = None
    suppressions: Annotated[list[RuntimeSuppression], msgspec.Meta(max_length=MAX_SUPPRESSIONS)] = []

    def __post_init__(self) -> None:
        problem = (
            network_problem(self.threat_networks)
            or network_problem(self.trusted_networks)
            or duplicate_suppressions_problem(self.suppressions)
        )
        if problem:
            raise ValueError(problem)


AnyDetectionOptions: TypeAlias = "DetectionOptions | RuntimeDetectionOptions"
"""What detection reads (rules, suppressions, learning period): either form of the options."""


def decode_detection(document: bytes) -> RuntimeDetectionOptions:
    """A `detection` section (JSON), checked as above; raises `msgspec.ValidationError` (a ValueError)."""
    return msgspec.json.decode(document, type=RuntimeDetectionOptions)


def load_runtime_detection(path: str | Path | None) -> RuntimeDetectionOptions | None:
    """The `detection` section in the JSON file at `path`; None (eksight's defaults) when no path is given."""
    return decode_detection(Path(path).read_bytes()) if path else None


def with_changes(detection: RuntimeDetectionOptions, **changes: object) -> RuntimeDetectionOptions:
    """`detection` with `changes`, checked again as a whole (msgspec's `replace` would not check them)."""
    return decode_detection(msgspec.json.encode({**msgspec.structs.asdict(detection), **changes}))
