"""Audit events of a tiny, controllable cluster for baseline tests."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from eksight.core.decode import RawEvent, SourceContext

START = datetime(2024, 9, 2, tzinfo=UTC)  # a Monday
ACCOUNT = "111122223333"
_ids = itertools.count()


def sso_user(name: str, permission_set: str = "Dev") -> dict[str, Any]:
    role = f"AWSReservedSSO_{permission_set}_0123456789abcdef"
    return {
        "username": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{name}",
        "uid": f"aws-iam-authenticator:{ACCOUNT}:AROAEXAMPLE",
        "groups": ["system:authenticated"],
        "extra": {
            "arn": [f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{name}"],
            "canonicalArn": [f"arn:aws:iam::{ACCOUNT}:role/{role}"],
            "sessionName": [name],
        },
    }


def service_account(namespace: str, name: str) -> dict[str, Any]:
    return {
        "username": f"system:serviceaccount:{namespace}:{name}",
        "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"],
    }


def event(
    user: dict[str, Any],
    when: datetime,
    *,
    verb: str = "get",
    resource: str = "pods",
    namespace: str = "team-a",
    name: str = "web-1",
    subresource: str = "",
    ip: str = "198.51.100.7",
    agent: str = "kubectl/v1.29.3 (darwin/arm64) kubernetes/6813625",
    code: int = 200,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    path = f"/api/v1/namespaces/{namespace}/{resource}/{name}" + (f"/{subresource}" if subresource else "")
    object_ref: dict[str, Any] = {"resource": resource, "namespace": namespace, "name": name, "apiVersion": "v1"}
    if subresource:
        object_ref["subresource"] = subresource
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    payload: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": f"id-{next(_ids)}",
        "stage": "ResponseStarted" if subresource == "exec" else "ResponseComplete",
        "requestURI": path,
        "verb": verb,
        "user": user,
        "sourceIPs": [ip],
        "userAgent": agent,
        "objectRef": object_ref,
        "responseStatus": {"code": code},
        "requestReceivedTimestamp": stamp,
        "stageTimestamp": stamp,
        "annotations": {"authorization.k8s.io/decision": "allow" if code < 400 else "forbid"},
    }
    if body is not None:
        payload["requestObject"] = body
        payload["level"] = "Request"
    return payload


def raw(events: list[dict[str, Any]], cluster: str = "prod") -> list[RawEvent]:
    context = SourceContext(cluster=cluster, account=ACCOUNT, region="eu-west-1")
    return [RawEvent(json.dumps(e).encode(), context, "test", i, None) for i, e in enumerate(events)]


def workdays(days: int, start: datetime = START):
    """(day index, datetime at 00:00) of Monday-Friday days from `start`."""
    for index in range(days):
        day = start + timedelta(days=index)
        if day.weekday() < 5:
            yield index, day


def routine(
    user: dict[str, Any],
    days: int,
    *,
    per_day: int = 12,
    namespace: str = "team-a",
    ip: str = "198.51.100.7",
    agent: str = "kubectl/v1.29.3 (darwin/arm64) kubernetes/6813625",
    hours: tuple[int, int] = (9, 17),
    start: datetime = START,
) -> list[dict[str, Any]]:
    """A developer's habits: reads pods, deployments and logs in one namespace on weekdays in office hours."""
    actions = [("get", "pods", ""), ("list", "pods", ""), ("get", "deployments", ""), ("get", "pods", "log")]
    out = []
    for _, day in workdays(days, start):
        for i in range(per_day):
            verb, resource, sub = actions[i % len(actions)]
            when = day + timedelta(hours=hours[0] + (i * (hours[1] - hours[0])) / per_day, minutes=i)
            out.append(
                event(
                    user, when, verb=verb, resource=resource, namespace=namespace, subresource=sub, ip=ip, agent=agent
                )
            )
    return out
