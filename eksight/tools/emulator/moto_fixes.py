"""Where moto's semantics differ from AWS in ways eksight's stacks hit, give it AWS's (for the local demo and the
emulator tests). Each fix is pinned by a `test_moto_quirk_*` test that fails once moto changes, so the fix can go.

- S3 bucket policies: moto evaluates only StringEquals-style conditions and counts any other operator (Bool,
  NumericLessThan, ...) as satisfied, so CDK's TLS-only Deny (aws:SecureTransport false, s3:TlsVersion < 1.2)
  denies every PutObject/GetObject even over HTTPS. boto3 talks HTTPS with TLS >= 1.2, so on AWS those Deny
  statements never apply to it: a Deny whose conditions moto can't evaluate is made neutral.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def tls_only_denies_are_neutral() -> Iterator[None]:
    from moto.iam.access_control import IAMPolicyStatement, PermissionResult
    from moto.iam.policy_conditions import CONDITION_OPERATIONS

    original: Callable[..., Any] = IAMPolicyStatement.is_action_permitted

    def is_action_permitted(
        self: Any, action: str, resource: str = "*", principal: str | None = None, incoming_condition_values: Any = None
    ) -> Any:
        if self._statement.get("Effect") == "Deny" and set(self._statement.get("Condition", {})) - set(
            CONDITION_OPERATIONS
        ):
            return PermissionResult.NEUTRAL
        return original(self, action, resource, principal, incoming_condition_values)

    # mypy rejects assigning to a method (both ignores below); patching moto's method and restoring it is the fix.
    IAMPolicyStatement.is_action_permitted = is_action_permitted  # type: ignore[method-assign]
    try:
        yield
    finally:
        IAMPolicyStatement.is_action_permitted = original  # type: ignore[method-assign]
