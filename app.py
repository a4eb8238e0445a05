#!/usr/bin/env python3
"""CDK entry point: one ingestion stack per configured region (`-c config=PATH`, default eksight.config.json)."""

from __future__ import annotations

import sys

import aws_cdk as cdk

from eksight.config import ConfigError
from stacks.app_builder import build_app

app = cdk.App()
try:
    build_app(app, app.node.try_get_context("config") or "eksight.config.json")
except ConfigError as error:
    print(f"eksight: invalid config\n{error}", file=sys.stderr)
    sys.exit(2)
app.synth()
