"""Settings read from YAML into typed dataclasses: each value is checked against its field's annotation, every
float must be finite, and a field declared with `ranged(...)` must lie in its range (items of a list each)."""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing

from charctl.util.errors import CharctlError

# PyYAML (YAML 1.1) reads 5e-5 as a string, wanting a dot in a float's mantissa; for a float setting it is a number
EXPONENT_FLOAT = re.compile(r"[-+]?[0-9]+[eE][-+]?[0-9]+")


def check_type(value, annotation, where: str):
    """`value` for a field annotated `annotation` (ints and 5e-5 accepted for floats, converted), or a CharctlError
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
        if option is float and isinstance(value, str) and EXPONENT_FLOAT.fullmatch(value):
            return float(value)
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):  # .inf or .nan in YAML: never a usable setting
                raise CharctlError(f"{where}: expected a finite number, got {value!r}")
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


@dataclasses.dataclass(frozen=True)
class Range:
    """Allowed values of a numeric setting: bounds open or closed, or at least another field's value."""

    low: float | None = None
    low_open: bool = False
    high: float | None = None
    high_open: bool = False
    at_least_field: str | None = None  # a sibling field's name: the value must be >= that field's value
    min_items: int = 0  # for a list: at least this many items
    max_items: int | None = None  # for a list: at most this many items

    def describe(self, sibling: float | None = None) -> str:
        if self.at_least_field is not None:
            return f">= {self.at_least_field} ({sibling:g})"
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        return f"{'<' if self.high_open else '<='} {self.high:g}"

    def allows(self, value: float, sibling: float | None = None) -> bool:
        low = sibling if self.at_least_field is not None else self.low
        if low is not None and not (value > low if self.low_open else value >= low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)


def ranged(default=dataclasses.MISSING, *, default_factory=dataclasses.MISSING, ge: float | None = None,
           gt: float | None = None, le: float | None = None, lt: float | None = None,
           at_least: str | None = None, min_items: int = 0, max_items: int | None = None):
    """A dataclass field whose values (or list items; None passes) must lie in a range, checked by
    `checked_fields`: ranged(0.99, ge=0, lt=1) is 0 <= x < 1; at_least="control_hz" is x >= that field."""
    bounds = Range(low=gt if gt is not None else ge, low_open=gt is not None,
                   high=lt if lt is not None else le, high_open=lt is not None, at_least_field=at_least,
                   min_items=min_items, max_items=max_items)
    return dataclasses.field(default=default, default_factory=default_factory, metadata={"range": bounds})


def _check_range(cls, key: str, value, values: dict, where: str) -> None:
    bounds = next((f.metadata.get("range") for f in dataclasses.fields(cls) if f.name == key), None)
    if bounds is None or value is None:
        return
    sibling = None
    if bounds.at_least_field is not None:
        sibling = values.get(bounds.at_least_field)
        if sibling is None:
            sibling = next(f.default for f in dataclasses.fields(cls) if f.name == bounds.at_least_field)
    if isinstance(value, list) and len(value) < bounds.min_items:
        raise CharctlError(f"{where}: {value!r} has {len(value)} items; allowed: at least {bounds.min_items}")
    if isinstance(value, list) and bounds.max_items is not None and len(value) > bounds.max_items:
        raise CharctlError(f"{where}: {value!r} has {len(value)} items; allowed: at most {bounds.max_items}")
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, (int, float)) and not bounds.allows(item, sibling):
            shown = f"{value!r}" if not isinstance(value, list) else f"{item!r} in {value!r}"
            raise CharctlError(f"{where}: {shown} is out of range; allowed: {bounds.describe(sibling)}")


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
    floats; nested dataclass fields built from mappings) and in its range; errors name `source` and the key. An
    unknown key's error ends with `unknown_hint`, or by default lists the known keys."""
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
    for key, value in out.items():
        _check_range(cls, key, value, out, f"{source}: {key}")
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
