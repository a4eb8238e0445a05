"""The Lambda handlers (lambdas/<name>/handler.py) as importable modules, for running them in-process: the
local demo, the provisioner's custom resources, and the handler tests."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from eksight.tools import PROJECT_ROOT

LAMBDAS_ROOT = PROJECT_ROOT / "lambdas"


def load_handler(name: str) -> ModuleType:
    """lambdas/<name>/handler.py as a fresh module. Lambda imports it as `handler`; here each gets a unique
    name, so several handlers can live in one process, and it is registered in sys.modules (dataclasses look
    their module up there)."""
    module_name = f"_eksight_lambda_{name}_handler"
    sys.modules.pop(module_name, None)
    spec = importlib.util.spec_from_file_location(module_name, LAMBDAS_ROOT / name / "handler.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
