"""The config's reference documents, generated from the models so they cannot drift (`make schema`):
schema/eksight.config.schema.json and docs/configuration.md."""

from __future__ import annotations

import json
import re
import types
import typing
from typing import Any

from pydantic import BaseModel

from eksight.config.models import ConfigFile, RegionEntry, RegionOptions


def json_schema() -> dict[str, Any]:
    schema = ConfigFile.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://github.com/eksight/eksight/schema/eksight.config.schema.json"
    return schema


_LIMIT_SYMBOLS = {"ge": "≥", "le": "≤", "min_length": "min items", "max_length": "max items"}


def markdown_reference() -> str:
    """docs/configuration.md, generated from the models so the two cannot drift (`make schema`)."""
    lines = [
        "# Configuration reference",
        "",
        "Generated from `eksight/config/models.py` by `make schema`; the JSON Schema is "
        "`schema/eksight.config.schema.json`. Every region's options are `defaults` deep-merged with the "
        "region's own (the region wins; a region that brings its own bucket ignores default bucket "
        "settings).",
        "",
    ]

    def table(model: type[BaseModel], path: str, skip: tuple[str, ...] = ()) -> None:
        lines.extend(
            [
                f"## `{path}`",
                "",
                " ".join((model.__doc__ or "").split()),
                "",
                "| field | type | default | limits | meaning |",
                "| --- | --- | --- | --- | --- |",
            ]
        )
        nested = []
        for name, info in model.model_fields.items():
            annotation = info.annotation
            if name in skip:
                continue
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                nested.append((annotation, f"{path}.{name}" if path != "(root)" else name))
                continue
            default = "required" if info.is_required() else json.dumps(info.get_default(call_default_factory=True))
            kind = re.sub(
                r"typing\.|datetime\.|eksight\.config\.models\.|eksight\.core\.detection_options\.|<class '|'>",
                "",
                str(annotation),
            ).replace(" | ", " or ")
            limits = ", ".join(
                f"{symbol} {getattr(m, attr)}"
                for m in info.metadata
                for attr, symbol in _LIMIT_SYMBOLS.items()
                if getattr(m, attr, None) is not None
            )
            description = (info.description or "").replace("|", "\\|")
            lines.append(f"| `{info.alias or name}` | {kind} | `{default}` | {limits} | {description} |")
            inner = _model_inside(annotation)
            if inner is not None:  # a list of entries or an optional object: its fields get a section too
                suffix = "[]" if typing.get_origin(annotation) is list else ""
                nested.append((inner, f"{path}.{name}{suffix}" if path != "(root)" else f"{name}{suffix}"))
        lines.append("")
        for model_type, sub_path in nested:
            table(model_type, sub_path)

    table(ConfigFile, "(root)")
    table(RegionEntry, "regions.<region>", skip=tuple(RegionOptions.model_fields))
    lines.append("Each region also accepts every option of `defaults` above, overriding it for that region.")
    return "\n".join(lines).replace("\n\n\n", "\n\n") + "\n"


def _model_inside(annotation: Any) -> type[BaseModel] | None:
    """The model of a `list[Model]` or `Model | None` field, else None."""
    origin = typing.get_origin(annotation)
    if origin is not list and origin not in (types.UnionType, typing.Union):
        return None
    models = [arg for arg in typing.get_args(annotation) if isinstance(arg, type) and issubclass(arg, BaseModel)]
    return models[0] if len(models) == 1 else None
