"""Turn merged stack configuration (plain dicts from YAML/JSON) into frozen, typed settings.

The settings classes are ordinary frozen dataclasses; this module reads their type hints and
field metadata, so the schema lives in one place and the reference table in the docs is
generated from it. Conversion never stops at the first problem: it collects every one, each
named by its config path, and the caller raises them together.

Field metadata understood here (all optional):
  doc      one line for the reference table
  minimum  smallest allowed number
  maximum  largest allowed number
  pattern  a regular expression a string must match in full
  allowed  a tuple of allowed values for an int or str field (when an enum would be overkill)
  secret   True for a value that is a secret: a message about it never quotes it
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from collections.abc import Collection, Iterator, Mapping
from enum import Enum
from typing import Any, TypeVar

from components.errors import Problem

T = TypeVar("T")

# Above 2**53 a JSON number (how Pulumi passes config) no longer holds every integer exactly, and no setting of
# the kit means anything that large: a bigger number is a typo or an attack on the parser, refused by key.
LARGEST_NUMBER = 2**53

_MISSING = object()

# Names of pools, models and tenants become parts of AWS and Kubernetes names (DNS labels).
NAME_PATTERN = r"[a-z0-9]([a-z0-9-]{0,28}[a-z0-9])?"
NAME_PATTERN_DOC = (
    "names are 1-30 characters of lower-case letters, digits and '-', starting and ending with a letter or digit"
)


def doc_field(
    doc: str,
    *,
    default: Any = dataclasses.MISSING,
    default_factory: Any = dataclasses.MISSING,
    **rules: Any,
) -> Any:
    """A dataclass field with its documentation and validation rules kept beside it."""
    metadata = {"doc": doc, **rules}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def close_matches(word: str, candidates: typing.Iterable[str]) -> str:
    """' (did you mean ...?)' for a mistyped word, or '' when nothing is close."""
    matches = difflib.get_close_matches(word, list(candidates), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(repr(m) for m in matches)}?)" if matches else ""


def describe_type(tp: Any) -> str:
    """A short human name of a settings type, for messages and the reference table."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in args if a is not type(None)]
        return f"{describe_type(inner[0])} or null"
    if origin is tuple:
        return f"list of {describe_type(args[0])}"
    if origin in (dict, Mapping):
        return f"map of name to {describe_type(args[1])}"
    if isinstance(tp, type) and issubclass(tp, Enum):
        return "one of " + ", ".join(str(m.value) for m in tp)
    if dataclasses.is_dataclass(tp):
        return "object"
    return {bool: "boolean", int: "integer", float: "number", str: "string"}.get(tp, str(tp))


def magnitude(value: float) -> str:
    """A number in three significant digits, for a message; an integer beyond a float's range by its power of ten
    (YAML and JSON read any number of digits)."""
    try:
        return f"{value:.3g}"
    except OverflowError:
        return f"about 1e{int(math.log10(abs(value)))}"


def _kind_of(value: Any, *, reveal: bool = True) -> str:
    """What a value is, for a message; with reveal False, without the value itself (a secret's)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}" if reveal else "a boolean"
    if isinstance(value, (int, float)):
        if not reveal:
            return "a number"
        return f"number {value if isinstance(value, float) or abs(value) <= LARGEST_NUMBER else magnitude(value)}"
    if isinstance(value, str):
        return f"string {value!r}" if reveal else "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


class Converter:
    """Converts plain data into a settings dataclass, collecting problems."""

    def __init__(self, *, secret_roots: Collection[str] = ()) -> None:
        self.problems: list[Problem] = []
        self.secret_roots = frozenset(secret_roots)
        """Top-level settings keys held as secrets (a stack's `secure:` values): messages never quote a value
        under them, which would print a decrypted key into a terminal or a CI log."""

    def _hidden(self, path: str, meta: Mapping[str, Any]) -> bool:
        return bool(meta.get("secret")) or re.split(r"[.\[]", path, maxsplit=1)[0] in self.secret_roots

    def _kind(self, path: str, value: Any, meta: Mapping[str, Any]) -> str:
        return _kind_of(value, reveal=not self._hidden(path, meta))

    def _quote(self, path: str, value: Any, meta: Mapping[str, Any]) -> str:
        return "the value" if self._hidden(path, meta) else repr(value)

    def fail(self, path: str, message: str) -> None:
        self.problems.append(Problem(path=path, message=message))

    def convert(self, tp: Any, value: Any, path: str, meta: Mapping[str, Any] | None = None) -> Any:
        meta = meta or {}
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin in (types.UnionType, typing.Union):
            if value is None:
                return None
            inner = [a for a in args if a is not type(None)]
            return self.convert(inner[0], value, path, meta)
        if value is None:
            self.fail(path, f"expected {describe_type(tp)}, got null")
            return _MISSING
        if dataclasses.is_dataclass(tp):
            return self.convert_object(typing.cast(type, tp), value, path)
        if origin is tuple:
            if not isinstance(value, list):
                self.fail(path, f"expected a list of {describe_type(args[0])}, got {self._kind(path, value, meta)}")
                return _MISSING
            items = [self.convert(args[0], v, f"{path}[{i}]", meta) for i, v in enumerate(value)]
            return _MISSING if any(i is _MISSING for i in items) else tuple(items)
        if origin in (dict, Mapping):
            if not isinstance(value, Mapping):
                self.fail(
                    path, f"expected a map of name to {describe_type(args[1])}, got {self._kind(path, value, meta)}"
                )
                return _MISSING
            out: dict[str, Any] = {}
            key_pattern = meta.get("key_pattern", NAME_PATTERN)
            for name in sorted(value, key=str):
                if not isinstance(name, str) or not re.fullmatch(key_pattern, name):
                    self.fail(f"{path}.{name}", meta.get("key_pattern_doc", NAME_PATTERN_DOC))
                    continue
                out[name] = self.convert(args[1], value[name], f"{path}.{name}", meta)
            if len(out) != len(value) or any(v is _MISSING for v in out.values()):
                return _MISSING
            return types.MappingProxyType(out)
        if isinstance(tp, type) and issubclass(tp, Enum):
            allowed = [str(m.value) for m in tp]
            if not isinstance(value, str) or value not in allowed:
                hidden = self._hidden(path, meta)
                shown = (
                    self._quote(path, value, meta) if isinstance(value, str) else repr(self._kind(path, value, meta))
                )
                self.fail(
                    path,
                    f"{shown} is not allowed; choose one of {', '.join(allowed)}"
                    + (close_matches(value, allowed) if isinstance(value, str) and not hidden else ""),
                )
                return _MISSING
            return tp(value)
        return self.convert_scalar(tp, value, path, meta)

    def convert_scalar(self, tp: Any, value: Any, path: str, meta: Mapping[str, Any]) -> Any:
        if isinstance(value, float) and not math.isfinite(value) and tp in (int, float):
            self.fail(path, f"expected a finite number, got {'the value' if self._hidden(path, meta) else value}")
            return _MISSING
        if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) > LARGEST_NUMBER:
            shown = "the value" if self._hidden(path, meta) else magnitude(value)
            self.fail(path, f"{shown} is too large: numbers here stay within +/-{LARGEST_NUMBER:.0e}")
            return _MISSING
        if tp is bool:
            if not isinstance(value, bool):
                self.fail(path, f"expected true or false, got {self._kind(path, value, meta)}")
                return _MISSING
            return value
        if tp is int:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
                self.fail(path, f"expected an integer, got {self._kind(path, value, meta)}")
                return _MISSING
            value = int(value)
        elif tp is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.fail(path, f"expected a number, got {self._kind(path, value, meta)}")
                return _MISSING
            value = float(value)
        elif tp is str:
            if not isinstance(value, str):
                self.fail(path, f"expected a string, got {self._kind(path, value, meta)}")
                return _MISSING
            pattern = meta.get("pattern")
            if pattern and not re.fullmatch(pattern, value):
                self.fail(path, f"{self._quote(path, value, meta)} does not match {meta.get('pattern_doc', pattern)}")
                return _MISSING
        minimum, maximum = meta.get("minimum"), meta.get("maximum")
        shown = "the value" if self._hidden(path, meta) else str(value)
        if minimum is not None and value < minimum:
            self.fail(path, f"{shown} is below the minimum of {minimum}")
            return _MISSING
        if maximum is not None and value > maximum:
            self.fail(path, f"{shown} is above the maximum of {maximum}")
            return _MISSING
        allowed = meta.get("allowed")
        if allowed is not None and value not in allowed:
            self.fail(
                path, f"{self._quote(path, value, meta)} is not allowed; choose one of {', '.join(map(str, allowed))}"
            )
            return _MISSING
        return value

    def convert_object(self, cls: type[T], value: Any, path: str, **context: Any) -> T | Any:
        if not isinstance(value, Mapping):
            self.fail(path, f"expected an object, got {self._kind(path, value, {})}")
            return _MISSING
        hints = typing.get_type_hints(cls)
        fields = {
            f.name: f
            for f in dataclasses.fields(cls)  # type: ignore[arg-type]
            if not f.metadata.get("context")
        }
        for key in sorted(set(value) - set(fields), key=str):
            self.fail(
                f"{path}.{key}" if path else key,
                "unknown key" + close_matches(str(key), fields) + f"; allowed: {', '.join(sorted(fields))}",
            )
        kwargs: dict[str, Any] = {}
        broken = False
        for name, field in fields.items():
            field_path = f"{path}.{name}" if path else name
            if name in value:
                converted = self.convert(hints[name], value[name], field_path, field.metadata)
                if converted is _MISSING:
                    broken = True
                else:
                    kwargs[name] = converted
            elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                self.fail(field_path, f"required ({field.metadata.get('doc', describe_type(hints[name]))})")
                broken = True
        if broken:
            return _MISSING
        return cls(**kwargs, **context)


def secret_fields(cls: type, data: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """(keys leading to it, value) of each field of settings class `cls` marked secret that `data` sets, whatever
    its value (a message must not print a mistyped secret either)."""
    if not isinstance(data, Mapping):
        return
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if field.name not in data:
            continue
        value, here = data[field.name], (*path, field.name)
        if field.metadata.get("secret"):
            yield here, value
            continue
        tp = _strip_optional(hints[field.name])
        if dataclasses.is_dataclass(tp):
            yield from secret_fields(typing.cast(type, tp), value, here)
        elif typing.get_origin(tp) in (dict, Mapping) and isinstance(value, Mapping):
            inner = _strip_optional(typing.get_args(tp)[1])
            if dataclasses.is_dataclass(inner):
                for name, item in value.items():
                    yield from secret_fields(typing.cast(type, inner), item, (*here, name))


def reference_rows(cls: type, prefix: str) -> list[tuple[str, str, str, str]]:
    """(path, type, default, doc) for every field below a settings class, for the docs."""
    rows: list[tuple[str, str, str, str]] = []
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if field.metadata.get("context"):
            continue
        tp = hints[field.name]
        path = f"{prefix}.{field.name}" if prefix else field.name
        default = _default_text(field)
        inner = typing.get_args(tp)[1] if typing.get_origin(tp) in (dict, Mapping) else tp
        inner = _strip_optional(inner)
        rows.append((path, describe_type(tp), default, field.metadata.get("doc", "")))
        if dataclasses.is_dataclass(inner):
            sub = f"{path}.<name>" if typing.get_origin(tp) in (dict, Mapping) else path
            rows.extend(reference_rows(typing.cast(type, inner), sub))
    return rows


def _strip_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (types.UnionType, typing.Union):
        return next(a for a in typing.get_args(tp) if a is not type(None))
    return tp


def _default_text(field: dataclasses.Field[Any]) -> str:
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        return "required"
    if dataclasses.is_dataclass(value):
        return "(see below)"
    if isinstance(value, Enum):
        return str(value.value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (tuple, Mapping, str)) and not value:
        return "empty"
    if isinstance(value, tuple):
        return ", ".join(str(v.value if isinstance(v, Enum) else v) for v in value)
    return str(value)
