"""YAML reading for the kit's own files: libyaml's C parser (about 10x faster), and errors naming the file.

Files people write (stack files, presets, Pulumi.yaml, the catalog and price book) are read strictly: a key
given twice in one mapping is refused with both lines (YAML 1.1 parsers keep the last one silently, so a
pasted block could undo a setting), and a file that is not UTF-8 is refused with the byte at fault.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

from components.errors import InputError, Problem

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_Loader):  # type: ignore[misc, valid-type]
    """The safe loader, refusing a key that appears twice in one mapping."""


def _mapping_without_duplicates(loader: SafeConstructor, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<: *anchor` brings keys the mapping may override: that is what merge keys are for
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, Hashable):
            continue  # the base constructor reports an unhashable key
        if key in seen:
            raise ConstructorError(
                "while reading a mapping",
                node.start_mark,
                f"found the key {key!r} twice (first on line {seen[key] + 1}): the second would silently win",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=True)


def _integer(loader: SafeConstructor, node: yaml.ScalarNode) -> int:
    """An integer, or a YAML error at its place: Python refuses to convert more than 4,300 digits (a guard against
    slow conversions), and no setting takes a number near that long."""
    try:
        return loader.construct_yaml_int(node)
    except ValueError:
        raise ConstructorError(
            None, None, f"an integer of {len(node.value)} characters: far beyond any setting", node.start_mark
        ) from None


def _timestamp_as_written(loader: SafeConstructor, node: yaml.ScalarNode) -> str:
    """A date or time as the text written: no file of the kit takes a date object, and the Pulumi CLI hands a
    stack's config to the program as text (an unquoted `2025-01-01` would otherwise become a Python date)."""
    return str(node.value)


_StrictLoader.add_constructor("tag:yaml.org,2002:map", _mapping_without_duplicates)
_StrictLoader.add_constructor("tag:yaml.org,2002:int", _integer)
_StrictLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_written)


def parse_yaml(text: str) -> Any:
    """One YAML document, strictly (duplicate keys refused)."""
    return yaml.load(text, Loader=_StrictLoader)


def parse_yaml_all(text: str) -> list[Any]:
    """Every document of a multi-document YAML stream (what Helm renders)."""
    return list(yaml.load_all(text, Loader=_Loader))  # a safe loader (CSafeLoader or SafeLoader)


def read_text(path: Path, what: str) -> str:
    """A text file people write, as UTF-8. InputError names the file (and the byte at fault)."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(Problem(path=str(path), message=f"{what} not found")) from None
    except IsADirectoryError:
        raise InputError(Problem(path=str(path), message=f"{what} is a directory, not a file")) from None
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise InputError(
            Problem(
                path=str(path),
                message=f"not UTF-8: byte 0x{exc.object[exc.start]:02x} on line {line} (save the file as UTF-8)",
            )
        ) from None


def read_yaml_mapping(path: Path, what: str) -> dict[str, Any]:
    """A YAML file that must hold a mapping (empty file: empty mapping). InputError names the file."""
    try:
        data = parse_yaml(read_text(path, what))
    except yaml.YAMLError as exc:
        raise InputError(Problem(path=str(path), message=f"not valid YAML: {exc}")) from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise InputError(Problem(path=str(path), message=f"{what} must be a YAML mapping"))
    return dict(data)
