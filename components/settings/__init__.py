"""Typed stack settings: presets merged with stack overrides, validated before anything is built."""

from components.settings.load import build_settings, merge
from components.settings.types import Settings

__all__ = ["Settings", "build_settings", "merge"]
