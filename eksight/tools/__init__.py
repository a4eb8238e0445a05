"""Tooling around the detector: the CLI, the setup wizard and generator, the local emulator and demo, and the
cluster simulator. Nothing in eksight.core, eksight.adapters or the Lambda assets imports this package."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
"""The checkout (or unpacked bundle) holding app.py, stacks/, lambdas/ and examples/."""
