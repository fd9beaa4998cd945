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

Each preset also says how images are decoded (`decoding`, see `images.DECODINGS`) and in
which dtype the global view is interpolated (`view_dtype`); the ``sphinx*`` presets decode
as the SPHINX reference does, so that released checkpoints see the inputs they were
trained on.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ._house import Registry, dtype_name
from .images import CLIP_MEAN_RGB, DECODINGS

RULES = ("grid", "anyres-llava", "anyres-internvl")

# LLaVA-NeXT's candidates (1x2, 2x1, 2x2, 1x3, 3x1 tiles) as (rows, cols).
LLAVA_NEXT_GRIDS: tuple[tuple[int, int], ...] = ((1, 2), (2, 1), (2, 2), (1, 3), (3, 1))

#: Limits that keep a preset's canvas (the resized image that is cut into views) sane.
MAX_SIDE = 4096
MAX_TILES = 64
MAX_CANVAS_PIXELS = 1 << 26


@dataclass(frozen=True)
class Preset:
    """A view plan. `side` is the encoder's input side; every view is side x side.

    `decoding` is "reference" or "corrected" (see `load_image`); `view_dtype` is the dtype
    the global view is interpolated in by `tile_tensor` ("float16" is what the SPHINX
    reference does with ``image.half()``).
    """

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
    decoding: str = "corrected"
    view_dtype: str = "float32"
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        def fail(key: str, expected: str) -> None:
            value = getattr(self, key)
            raise ValueError(f"preset {self.name!r}: {key}={value!r}, expected {expected}")

        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"preset name={self.name!r}, expected a non-empty string")
        for key in ("rule", "decoding", "view_dtype", "description"):
            if not isinstance(getattr(self, key), str):
                fail(key, "a string")
        if self.rule not in RULES:
            fail("rule", f"one of {RULES}")
        if self.decoding not in DECODINGS:
            fail("decoding", f"one of {DECODINGS}")
        try:
            object.__setattr__(self, "view_dtype", dtype_name(self.view_dtype))
        except ValueError:
            fail("view_dtype", "float32|fp32, bfloat16|bf16 or float16|fp16|half")
        if not isinstance(self.global_view, bool):
            fail("global_view", "true or false")
        for key in ("side", "rows", "cols", "min_tiles", "max_tiles"):
            if not _is_int(getattr(self, key)) or getattr(self, key) < 1:
                fail(key, "a positive integer")
        if self.side > MAX_SIDE:
            fail("side", f"at most {MAX_SIDE}")
        for key in ("rows", "cols", "max_tiles"):
            if getattr(self, key) > MAX_TILES:
                fail(key, f"at most {MAX_TILES}")
        if self.max_tiles < self.min_tiles:
            fail("max_tiles", f">= min_tiles ({self.min_tiles})")
        grids = self.grids
        if not _is_pairs(grids):
            fail("grids", "a non-empty list of (rows, cols) pairs of positive integers")
        object.__setattr__(self, "grids", tuple((int(r), int(c)) for r, c in grids))
        fill = self.fill
        if not isinstance(fill, (list, tuple)) or len(fill) != 3:
            fail("fill", "three integers in 0..255")
        if not all(_is_int(v) and 0 <= v <= 255 for v in fill):
            fail("fill", "three integers in 0..255")
        object.__setattr__(self, "fill", tuple(int(v) for v in fill))
        tiles = self.max_canvas_tiles
        if tiles * self.side * self.side > MAX_CANVAS_PIXELS:
            raise ValueError(
                f"preset {self.name!r}: up to {tiles} tiles of side={self.side} make a canvas of "
                f"{tiles * self.side**2} pixels, expected at most {MAX_CANVAS_PIXELS}"
            )

    @property
    def max_canvas_tiles(self) -> int:
        """The most tiles a canvas of this preset can have."""
        if self.rule == "anyres-llava":
            return max(rows * cols for rows, cols in self.grids)
        if self.rule == "anyres-internvl":
            return self.max_tiles
        return self.rows * self.cols

    def replace(self, **changes: Any) -> Preset:
        """A copy with some fields changed, e.g. ``get_preset("grid").replace(rows=1, cols=3)``."""
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            raise ValueError(f"preset {self.name!r}: unknown fields {unknown}")
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
        """Load a preset from a .json file, or .yaml/.yml when PyYAML is installed.

        Every problem (unreadable text, bad syntax, unknown key, wrong type, absurd size) is
        one ValueError naming the file and the key.
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
        data = (
            _parse_yaml(path, text) if path.suffix in (".yaml", ".yml") else _parse_json(path, text)
        )
        if not isinstance(data, dict):
            raise ValueError(
                f"{path}: expected a mapping of preset fields, got {type(data).__name__}"
            )
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}: {err}") from None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_pairs(grids: object) -> bool:
    if not isinstance(grids, (list, tuple)) or not grids:
        return False
    return all(
        isinstance(g, (list, tuple)) and len(g) == 2 and all(_is_int(v) and v >= 1 for v in g)
        for g in grids
    )


def _parse_json(path: Path, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    except RecursionError:
        raise ValueError(f"{path}: JSON nested too deeply") from None


def _parse_yaml(path: Path, text: str) -> Any:
    try:
        import yaml
    except ImportError:
        raise ValueError(f"{path}: reading YAML needs PyYAML: pip install pyyaml") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({' '.join(str(err).split())})") from None
    except RecursionError:
        raise ValueError(f"{path}: YAML nested too deeply") from None


_REGISTRY: Registry[Preset] = Registry("preset")


def register_preset(
    name: str | Preset, preset: Preset | None = None, *, overwrite: bool = False
) -> Preset:
    """Make `preset` available to `get_preset` under `name`.

    ``register_preset(preset)`` registers it under its own name; a preset registered under
    another name is stored renamed. Existing names are refused unless `overwrite`.
    """
    if isinstance(name, Preset):
        if preset is not None:
            raise TypeError("register_preset(name, preset): pass the name first")
        name, preset = name.name, name
    if not isinstance(preset, Preset):
        raise TypeError(f"register_preset({name!r}, ...): expected a Preset, got {preset!r}")
    if preset.name != name:
        preset = preset.replace(name=name)
    return _REGISTRY.register(name, preset, overwrite=overwrite)


def list_presets(pattern: str | None = None) -> list[str]:
    """Registered preset names, sorted; `pattern` is a glob filter (``"sphinx*"``)."""
    return _REGISTRY.names(pattern)


def get_preset(name: str | Preset, **overrides: Any) -> Preset:
    """Look up a preset by name (a Preset passes through); keyword overrides change fields.

    An unknown name raises `UnknownNameError` (a KeyError and ValueError) listing the known.
    """
    preset = name if isinstance(name, Preset) else _REGISTRY.get(name)
    return preset.replace(**overrides) if overrides else preset


_REFERENCE = {"decoding": "reference"}
for _preset in (
    Preset("sphinx", **_REFERENCE, description="SPHINX: the padded square at 224, one view"),
    Preset(
        "sphinx-1k", rows=2, cols=2, **_REFERENCE,
        description="SPHINX-1k: 448 square, global + 2x2",
    ),
    Preset(
        "sphinx-2k", rows=3, cols=3, **_REFERENCE,
        description="SPHINX-2k: 672 square, global + 3x3",
    ),
    Preset(
        "sphinx-light", side=512, **_REFERENCE,
        description="SPHINX-Tiny (llama_ens_light): the padded square at 512, one view",
    ),
    Preset(
        "sphinx-light-1k", side=512, rows=2, cols=2, view_dtype="float16", **_REFERENCE,
        description="SPHINX-Tiny-1k (llama_ens5_light): 1024 square, global 512 (fp16) + 2x2",
    ),
    Preset("grid", rows=2, cols=2, description="any rows x cols grid of side-pixel tiles"),
    Preset("anyres-llava", rule="anyres-llava", description="LLaVA-NeXT any-resolution"),
    Preset("anyres-internvl", rule="anyres-internvl", description="InternVL dynamic tiles"),
):  # fmt: skip
    register_preset(_preset)
