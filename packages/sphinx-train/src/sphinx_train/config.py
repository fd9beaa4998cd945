"""The composition record of a SPHINX model, saved next to its weights."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class SphinxConfig:
    """How a model is put together: which encoder, which tiling preset, which template.

    The LLM keeps its own Hugging Face config; ``encoder_config`` is the encoder's
    ``config.to_dict()`` so the same architecture can be rebuilt without the preset table.
    """

    tiling: str = "sphinx"
    template: str = "sphinx"
    encoder: str | None = "sphinx"
    encoder_config: dict[str, Any] | None = field(default=None, repr=False)
    # Multiplies the projected image tokens before they join the text embeddings. The
    # projections end in a LayerNorm (tokens of RMS 1) while a small LLM's text embeddings
    # start near std 0.02; a small scale (demo presets) puts both on one footing. 1.0: as SPHINX.
    image_token_scale: float = 1.0
    format_version: int = 1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> SphinxConfig:
        known = {item.name for item in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{source}: unknown keys {unknown}; expected some of {sorted(known)}")
        config = cls(**data)
        scale = config.image_token_scale
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
            raise ValueError(f"{source}: image_token_scale {scale!r}; expected a number above 0")
        if config.format_version != 1:
            raise ValueError(
                f"{source}: format_version {config.format_version} is not supported (expected 1)"
            )
        return config

    @classmethod
    def from_file(cls, path: str | Path) -> SphinxConfig:
        """Read a JSON or YAML file."""
        path = Path(path)
        text = path.read_text()
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping at the top level")
        return cls.from_dict(data, source=str(path))
