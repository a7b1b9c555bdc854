"""Settings read from YAML into typed dataclasses: each value is checked against its field's annotation."""

from __future__ import annotations

import dataclasses
import types
import typing

from charctl.util.errors import CharctlError


def check_type(value, annotation, where: str):
    """`value` for a field annotated `annotation` (ints accepted for floats, converted), or a CharctlError
    naming `where`. Handles bool, int, float, str, dict, Literal[...], list[X] of any of them and `X | None`."""
    options = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) \
        else (annotation,)
    for option in options:
        if option is type(None) and value is None:
            return None
        if typing.get_origin(option) is typing.Literal and isinstance(value, str) and value in typing.get_args(option):
            return value
        if option is bool and isinstance(value, bool):
            return value
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if option is str and isinstance(value, str):
            return value
        if option is dict and isinstance(value, dict):
            return dict(value)
        if typing.get_origin(option) is list and isinstance(value, list):
            (item,) = typing.get_args(option)
            try:
                return [check_type(v, item, where) for v in value]
            except CharctlError:
                continue
    raise CharctlError(f"{where}: expected {' or '.join(_describe(o) for o in options)}, got {value!r}")


def _describe(option) -> str:
    if option is type(None):
        return "null"
    if typing.get_origin(option) is typing.Literal:
        return "one of " + ", ".join(typing.get_args(option))
    if typing.get_origin(option) is list:
        return f"a list of {_describe(typing.get_args(option)[0])}"
    if option is dict:
        return "a mapping"
    return getattr(option, "__name__", str(option))


def checked_fields(cls, values: dict, source, unknown_hint: str | None = None) -> dict:
    """`values` with every key a field of dataclass `cls` and every value of its field's type (ints converted to
    floats; nested dataclass fields built from mappings); errors name `source` and the key. An unknown key's
    error ends with `unknown_hint`, or by default lists the known keys."""
    hints = typing.get_type_hints(cls)
    for key in values:
        if key not in hints:
            raise CharctlError(f"{source}: unknown key '{key}' ({unknown_hint or 'known: ' + ', '.join(hints)})")
    out = {}
    for key, value in values.items():
        if dataclasses.is_dataclass(hints[key]):
            if not isinstance(value or {}, dict):
                raise CharctlError(f"{source}: {key}: expected a mapping, got {value!r}")
            out[key] = hints[key](**checked_fields(hints[key], value or {}, f"{source}: {key}"))
        else:
            out[key] = check_type(value, hints[key], f"{source}: {key}")
    return out


def build(cls, values, source, unknown_hint: str | None = None):
    """An instance of dataclass `cls` from a mapping read from a file: `checked_fields`, and a missing required
    key is a CharctlError naming `source` and the key too."""
    if not isinstance(values, dict):
        raise CharctlError(f"{source}: expected a mapping, got {values!r}")
    checked = checked_fields(cls, values, source, unknown_hint)
    for f in dataclasses.fields(cls):
        if f.name not in checked and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise CharctlError(f"{source}: missing key '{f.name}'")
    return cls(**checked)
