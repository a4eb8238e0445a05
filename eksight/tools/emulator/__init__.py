"""Local (emulated) deployment: create a synthesized stack's resources in an AWS emulator such as moto.

Not part of the pure domain: this package talks to AWS APIs through boto3.
"""

from eksight.tools.emulator.provisioner import ProvisionedStack, ProvisionError, Skipped, provision

__all__ = ["ProvisionError", "ProvisionedStack", "Skipped", "provision"]
