"""The Lambda handlers (lambdas/<name>/handler.py) as importable modules, for running them in-process: the
local demo, the provisioner's custom resources, and the handler tests."""

from __future__ import annotations

import importlib
import logging
import sys
from types import ModuleType
from typing import IO

from eksight.tools import PROJECT_ROOT

LAMBDAS_ROOT = PROJECT_ROOT / "lambdas"


def load_handler(name: str) -> ModuleType:
    """lambdas/<name>/handler.py, imported afresh as ``lambdas.<name>.handler`` (so its cold start — settings
    from the environment, clients — runs again, and its sibling modules import as they do in the repository).
    Lambda imports the same file as the top-level module ``handler`` of the function's asset."""
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))  # `lambdas` is not an installed package
    module_name = f"lambdas.{name}.handler"
    sys.modules.pop(module_name, None)
    return importlib.import_module(module_name)


def point_logger_at(service: str, stream: IO[str]) -> list[tuple[logging.StreamHandler[IO[str]], IO[str]]]:
    """Point the Powertools logger of `service` at `stream`; returns (handler, its previous stream) pairs. Powertools
    keeps one logger per service name for the whole process, bound to the stream it first saw, which an earlier
    run may have closed since: that one is replaced without the flush `setStream` would attempt on it."""
    previous = []
    for handler in logging.getLogger(service).handlers:
        if isinstance(handler, logging.StreamHandler):
            previous.append((handler, handler.stream))
            if getattr(handler.stream, "closed", False):
                handler.stream = stream
            else:
                handler.setStream(stream)
    return previous
