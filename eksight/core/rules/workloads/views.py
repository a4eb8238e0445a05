"""How workload rules read a write: its pod specs and containers (add-on images skipped), the workload a
finding is recorded against, and the allow-lists they share."""

from __future__ import annotations

from collections.abc import Iterable

from eksight.core.findings import ResourceRef, Severity
from eksight.core.rules import defaults
from eksight.core.rules.base import Hit, RuleContext
from eksight.core.rules.common import HUMAN_KINDS, NAME_NOT_LOGGED, dry_run, object_name
from eksight.core.workloads import ContainerView, PodSpecView

WORKLOAD_RESOURCES = frozenset(
    {
        "pods",
        "deployments",
        "daemonsets",
        "statefulsets",
        "replicasets",
        "replicationcontrollers",
        "jobs",
        "cronjobs",
        "podtemplates",
    }
)
WRITE = frozenset({"create", "update", "patch"})
POD_SUBRESOURCES = frozenset({"", "ephemeralcontainers"})


WORKLOAD_ALLOW = defaults.SYSTEM.extend(defaults.EKS_ADDON_IMAGES)
# Pod-content rules also see the pods controllers make (recorded at LOW against their owner, see `instance_of`).
CONTENT_ALLOW = defaults.CONTROL_PLANE.extend(defaults.EKS_ADDON_IMAGES)


# --- helpers ---------------------------------------------------------------------------------------------


def pod_specs_of(ctx: RuleContext) -> list[PodSpecView]:
    """The event's pod specs (decoded once per event: the engine shares one context among its rules)."""
    return [] if dry_run(ctx) else ctx.pod_specs


def container_label(container: ContainerView) -> str:
    return {"init": "init container", "ephemeral": "ephemeral container"}.get(container.kind, "container")


def describe_container(container: ContainerView) -> str:
    return f"{container_label(container)} {container.name or '?'} (image {container.image or '?'})"


def judged_containers(ctx: RuleContext, spec: PodSpecView) -> list[ContainerView]:
    """Containers not running an allow-listed (EKS add-on) image."""
    return [c for c in spec.containers if not (c.image and ctx.allow.allows_image(c.image))]


def addon_pod(ctx: RuleContext, spec: PodSpecView) -> bool:
    """Every container of the spec runs an allow-listed image (and the spec shows at least one)."""
    images = [c.image for c in spec.containers]
    return bool(images) and all(image and ctx.allow.allows_image(image) for image in images)


def owner_of(spec: PodSpecView) -> str:
    where = f"{spec.namespace}/" if spec.namespace else ""
    return f"{spec.owner_kind} {where}{spec.name or NAME_NOT_LOGGED}"


def workload_target(ctx: RuleContext, spec: PodSpecView | None = None) -> ResourceRef:
    event = ctx.event
    kind = event.resource + (f"/{event.subresource}" if event.subresource else "")
    name = (spec.name if spec else "") or object_name(ctx)
    return ResourceRef(event.namespace or (spec.namespace if spec else ""), kind, name)


def images_of(spec: PodSpecView) -> str:
    return ", ".join(f"{c.name or '?'}={c.image or '?'}" for c in spec.containers) or "no containers shown"


def worst(values: Iterable[Severity], default: Severity = Severity.LOW) -> Severity:
    return max(values, default=default)


def by_person(ctx: RuleContext) -> bool:
    return ctx.principal.kind in HUMAN_KINDS


def instance_of(ctx: RuleContext) -> tuple[ResourceRef, str] | None:
    """For a pod that a kube-system controller creates from its owner's template: (the owner, as the finding's
    target, and a note). The template was judged when its author wrote it; each instance is recorded at LOW
    against the owner, so all pods of one ReplicaSet/DaemonSet/Job fold into one finding per window and
    workloads deployed before eksight still show up. None for any other request."""
    if not defaults.KUBE_SYSTEM_CONTROLLERS.allows_principal(ctx.principal):
        return None
    body = ctx.body
    metadata = body.get("metadata") if isinstance(body, dict) else None
    owners = metadata.get("ownerReferences") if isinstance(metadata, dict) else None
    owner = (
        next((o for o in owners if isinstance(o, dict) and o.get("controller")), None)
        if isinstance(owners, list)
        else None
    )
    kind = str(owner.get("kind", "")) if owner else ""
    name = str(owner.get("name", "")) if owner else ""
    resource = (kind.lower() + "s") if kind else ctx.event.resource
    note = (
        f" (a pod that {ctx.principal.service_account} created from {kind} {name or '?'}: the template's author "
        "is judged when writing it)"
    )
    return ResourceRef(ctx.event.namespace, resource, name or object_name(ctx)), note


def judged(ctx: RuleContext, hit: Hit, instance_severity: Severity = Severity.LOW) -> Hit:
    """`hit` as is, or re-targeted at the owner at `instance_severity` for a controller-made pod."""
    instance = instance_of(ctx)
    if instance is None:
        return hit
    owner, note = instance
    return Hit(
        detail=hit.detail.rstrip(".") + note + ".", severity=instance_severity, target=owner, details=hit.details
    )
