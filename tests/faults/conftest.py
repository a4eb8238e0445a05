"""One emulated account per test module (moto server + DynamoDB Local, the demo's stacks provisioned) and the
fault-free reference run in it: see `pipeline`."""

from tests.faults.pipeline import account, reference

__all__ = ["account", "reference"]
