"""params.yaml sections -> frozen, validated dataclasses.

Each experiment defines its section as a frozen dataclass; `parse` builds it from
the raw mapping and stops with one `ParamError` line naming the full key, what
was found and what is allowed. Constraints ride on field metadata:

    lr: float = field(metadata=bounds(gt=0))
    device: Literal["auto", "cpu"] = "auto"
"""
from __future__ import annotations

import collections.abc
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, Mapping, TypeVar

import yaml

from pipeline.core.errors import ParamError

T = TypeVar("T")


def bounds(gt=None, ge=None, lt=None, le=None, min_len=None, max_len=None, choices=None) -> dict:
    """Field metadata for numeric bounds, sequence lengths and element choices."""
    spec = dict(gt=gt, ge=ge, lt=lt, le=le, min_len=min_len, max_len=max_len, choices=choices)
    return {"bounds": {k: v for k, v in spec.items() if v is not None}}


def load_params(path: str | Path = "params.yaml") -> dict:
    path = Path(path)
    if not path.exists():
        raise ParamError(f"{path}: not found; run the stage from the repository root")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ParamError(f"{path}: not valid YAML ({exc.__class__.__name__}); fix the file") from None
    if not isinstance(data, dict):
        raise ParamError(f"{path}: must be a mapping of sections, got {type(data).__name__}")
    return data


def parse(cls: type[T], raw: Any, key: str) -> T:
    """Build dataclass `cls` from mapping `raw`; `key` is its dotted path for messages."""
    if not isinstance(raw, Mapping):
        raise ParamError(f"{key or 'params.yaml'}: must be a mapping with keys {_names(cls)}, got {_show(raw)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ParamError(f"{_join(key, unknown[0])}: unknown key; allowed keys: {_names(cls)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, f in fields.items():
        sub = _join(key, name)
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ParamError(f"{sub}: missing; expected {_describe(hints[name])}")
            continue
        values[name] = _convert(hints[name], raw[name], sub, f.metadata.get("bounds", {}))
    obj = cls(**values)
    check = getattr(obj, "validate", None)
    if check is not None:
        check(key)
    return obj


def _convert(tp, value, key: str, spec: dict):
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(inner, value, key, spec)
    if origin is Literal:
        if value not in args:
            raise ParamError(f"{key}: {_show(value)} is not allowed; choose one of {', '.join(map(str, args))}")
        return value
    if dataclasses.is_dataclass(tp):
        return parse(tp, value, key)
    if origin in (dict, collections.abc.Mapping):
        if not isinstance(value, Mapping) or not value:
            raise ParamError(f"{key}: must be a non-empty mapping, got {_show(value)}")
        return types.MappingProxyType({k: _convert(args[1], v, _join(key, k), spec) for k, v in value.items()})
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ParamError(f"{key}: must be a list of {_describe(args[0])}, got {_show(value)}")
        _check_len(value, key, spec)
        item_spec = {k: v for k, v in spec.items() if k not in ("min_len", "max_len")}
        return tuple(_convert(args[0], v, f"{key}[{i}]", item_spec) for i, v in enumerate(value))
    return _scalar(tp, value, key, spec)


def _scalar(tp, value, key: str, spec: dict):
    if tp is bool:
        if not isinstance(value, bool):
            raise ParamError(f"{key}: must be true or false, got {_show(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamError(f"{key}: must be a whole number, got {_show(value)}")
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamError(f"{key}: must be a number, got {_show(value)}")
        value = float(value)
    elif tp is str:
        if not isinstance(value, str):
            raise ParamError(f"{key}: must be a string, got {_show(value)}")
    if "choices" in spec and value not in spec["choices"]:
        raise ParamError(f"{key}: {_show(value)} is not allowed; choose one of {', '.join(map(str, spec['choices']))}")
    for op, bound, text in (("gt", ">", "greater than"), ("ge", ">=", "at least"),
                            ("lt", "<", "less than"), ("le", "<=", "at most")):
        if op in spec and not _compare(op, value, spec[op]):
            raise ParamError(f"{key}: must be {text} {spec[op]}, got {_show(value)}")
    return value


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else str(name)


def _compare(op, a, b) -> bool:
    return {"gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}[op]


def _check_len(value, key, spec):
    if "min_len" in spec and len(value) < spec["min_len"]:
        raise ParamError(f"{key}: needs at least {spec['min_len']} item(s), got {len(value)}")
    if "max_len" in spec and len(value) > spec["max_len"]:
        raise ParamError(f"{key}: takes at most {spec['max_len']} item(s), got {len(value)}")


def _names(cls) -> str:
    return ", ".join(f.name for f in dataclasses.fields(cls))


def _describe(tp) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return "one of " + ", ".join(map(str, args))
    if origin is tuple:
        return f"a list of {_describe(args[0])}"
    if dataclasses.is_dataclass(tp):
        return f"a mapping with keys {_names(tp)}"
    return {int: "a whole number", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


def _show(value) -> str:
    return repr(value) if not isinstance(value, (dict, list)) else type(value).__name__


def to_dict(obj) -> dict:
    """A dataclass as plain JSON-able values (for hashing and MLflow params)."""
    def plain(v):
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, Mapping):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        return v
    return plain(obj)


def flatten(d: Mapping, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; lists stay values."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, name + "."))
        else:
            out[name] = v
    return out
