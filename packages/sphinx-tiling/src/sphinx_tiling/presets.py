"""Named view plans: how an image is cut into encoder-sized views.

Three rules cover every preset:

* ``grid``: pad the image (centred, fill colour) to the aspect ratio of a rows x cols
  canvas, resize it to (cols * side, rows * side) and cut it row-major. With more than one
  tile, view 0 is the whole canvas resized to side x side. For a square grid this is
  exactly the SPHINX recipe (pad to square, resize, global view + crops).
* ``anyres-llava``: among candidate grids, pick the one that keeps the most of the image's
  pixels after an aspect-preserving fit (effective resolution, capped at the original
  pixel count); ties go to the least wasted canvas area, then to the earlier candidate.
  The image is resized to fit that canvas and padded centred (LLaVA-NeXT).
* ``anyres-internvl``: among all grids with min_tiles <= rows * cols <= max_tiles, pick the
  one whose aspect ratio is closest to the image's; on a tie the larger grid wins only when
  the image has more than half that grid's pixels. The image is stretched onto the canvas
  and, when there is more than one tile, a thumbnail view is added (InternVL 1.5).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .images import CLIP_MEAN_RGB

RULES = ("grid", "anyres-llava", "anyres-internvl")

# LLaVA-NeXT's candidates (1x2, 2x1, 2x2, 1x3, 3x1 tiles) as (rows, cols).
LLAVA_NEXT_GRIDS: tuple[tuple[int, int], ...] = ((1, 2), (2, 1), (2, 2), (1, 3), (3, 1))


@dataclass(frozen=True)
class Preset:
    """A view plan. `side` is the encoder's input side; every view is side x side."""

    name: str
    rule: str = "grid"
    side: int = 224
    rows: int = 1
    cols: int = 1
    global_view: bool = True
    grids: tuple[tuple[int, int], ...] = LLAVA_NEXT_GRIDS
    min_tiles: int = 1
    max_tiles: int = 6
    fill: tuple[int, int, int] = CLIP_MEAN_RGB
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        def fail(key: str, expected: str) -> None:
            value = getattr(self, key)
            raise ValueError(f"preset {self.name!r}: {key}={value!r}, expected {expected}")

        if self.rule not in RULES:
            fail("rule", f"one of {RULES}")
        for key in ("side", "rows", "cols", "min_tiles", "max_tiles"):
            if not isinstance(getattr(self, key), int) or getattr(self, key) < 1:
                fail(key, "a positive integer")
        if self.max_tiles < self.min_tiles:
            fail("max_tiles", f">= min_tiles ({self.min_tiles})")
        grids = tuple(tuple(int(v) for v in grid) for grid in self.grids)
        if not grids or any(len(g) != 2 or min(g) < 1 for g in grids):
            fail("grids", "a non-empty list of (rows, cols) pairs of positive integers")
        object.__setattr__(self, "grids", grids)
        fill = tuple(int(v) for v in self.fill)
        if len(fill) != 3 or not all(0 <= v <= 255 for v in fill):
            fail("fill", "three integers in 0..255")
        object.__setattr__(self, "fill", fill)

    def replace(self, **changes: Any) -> Preset:
        """A copy with some fields changed, e.g. ``get_preset("grid").replace(rows=1, cols=3)``."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["grids"] = [list(g) for g in self.grids]
        data["fill"] = list(self.fill)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preset:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown preset keys {unknown}; expected some of {sorted(known)}")
        if "name" not in data:
            raise ValueError("preset needs a 'name'")
        return cls(**data)

    @classmethod
    def from_file(cls, path: str | Path) -> Preset:
        """Load a preset from a .json file, or .yaml/.yml when PyYAML is installed."""
        path = Path(path)
        text = path.read_text()
        if path.suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError as err:
                raise ImportError(f"reading {path} needs PyYAML: pip install pyyaml") from err
            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of preset fields")
        return cls.from_dict(data)


_REGISTRY: dict[str, Preset] = {}


def register_preset(preset: Preset, *, overwrite: bool = False) -> Preset:
    """Make `preset` available to `get_preset` under its name."""
    if preset.name in _REGISTRY and not overwrite:
        raise ValueError(f"preset {preset.name!r} is already registered")
    _REGISTRY[preset.name] = preset
    return preset


def list_presets() -> list[str]:
    return sorted(_REGISTRY)


def get_preset(name: str | Preset, **overrides: Any) -> Preset:
    """Look up a preset by name (a Preset passes through); keyword overrides change fields."""
    if isinstance(name, Preset):
        preset = name
    else:
        try:
            preset = _REGISTRY[name]
        except (KeyError, TypeError):
            raise ValueError(f"unknown preset {name!r}; expected one of {list_presets()}") from None
    return preset.replace(**overrides) if overrides else preset


for _preset in (
    Preset("sphinx", rows=1, cols=1, description="SPHINX: the padded square at 224, one view"),
    Preset("sphinx-1k", rows=2, cols=2, description="SPHINX-1k: 448 square, global + 2x2"),
    Preset("sphinx-2k", rows=3, cols=3, description="SPHINX-2k: 672 square, global + 3x3"),
    Preset("grid", rows=2, cols=2, description="any rows x cols grid of side-pixel tiles"),
    Preset("anyres-llava", rule="anyres-llava", description="LLaVA-NeXT any-resolution"),
    Preset("anyres-internvl", rule="anyres-internvl", description="InternVL dynamic tiles"),
):
    register_preset(_preset)
