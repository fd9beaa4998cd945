"""SphinxProcessor: everything between raw inputs and the model, saved with the model.

It holds the tiling preset and the conversation template in full (so a model saved with a
custom preset loads anywhere), the tokenizer, the image decoding choice and the default
generation preset, the way a Hugging Face processor travels with its model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch

from sphinx_train._house import one_line
from sphinx_train.batch import SphinxBatch, SphinxSample, collate
from sphinx_train.conversation import Messages, encode_prompt
from sphinx_train.generation import DEFAULT_GENERATION, GenerationPreset, get_generation_preset
from sphinx_train.tokenizer import TextTokenizer, load_tokenizer

PROCESSOR_FILE = "processor.json"
TOKENIZER_FOLDER = "tokenizer"
# "reference": only image.convert("RGB"), as the reference code; "corrected": EXIF
# orientation, alpha over the pad colour, 16-bit grey scaled (sphinx-tiling's load_image).
DECODINGS = ("reference", "corrected")
DEFAULT_DECODING = "reference"


class SphinxProcessor:
    """Images and conversations -> a :class:`SphinxBatch` the model takes."""

    def __init__(
        self,
        tiling="sphinx",
        template="sphinx",
        tokenizer: TextTokenizer | None = None,
        *,
        decoding: str | None = None,
        generation: str | GenerationPreset = DEFAULT_GENERATION,
    ):
        from sphinx_tasks import get_template
        from sphinx_tiling import get_preset

        self.tiling = get_preset(tiling)
        # Default: the tiling preset's own choice where sphinx-tiling records one.
        decoding = decoding or getattr(self.tiling, "decoding", DEFAULT_DECODING)
        if decoding not in DECODINGS:
            raise ValueError(f"decoding={decoding!r}: expected one of {DECODINGS}")
        self.template = get_template(template)
        self.tokenizer = tokenizer
        self.decoding = decoding
        self.generation = get_generation_preset(generation)

    def require_tokenizer(self) -> TextTokenizer:
        if self.tokenizer is None:
            raise RuntimeError(
                "this model has no tokenizer; pass tokenizer=... (a local tokenizer.model "
                "or Hugging Face tokenizer folder) when creating or loading it"
            )
        return self.tokenizer

    # -- inputs -------------------------------------------------------------------------------

    def load_image(self, image):
        """Decode one image source with this processor's decoding choice."""
        from sphinx_tiling import load_image

        return load_image(image, fill=self.tiling.fill, decoding=self.decoding)

    def encode_text(self, conversation: str | Messages) -> list[int]:
        """BOS + the templated prompt ending with the open assistant turn."""
        check_conversation(conversation)
        return encode_prompt(self.require_tokenizer(), conversation, self.template)

    def __call__(self, images=None, text: str | Messages | Sequence = "") -> SphinxBatch:
        """Model inputs for one (image, question) or lists of them (images may hold None)."""
        from sphinx_tiling import tile_batch

        single = isinstance(text, str) or (
            isinstance(text, Sequence) and bool(text) and isinstance(text[0], dict)
        )
        conversations = [text] if single else list(text)
        if single or images is None:
            images = [images] if single else [None] * len(conversations)
        images = list(images)
        if len(images) != len(conversations):
            raise ValueError(f"{len(conversations)} conversations but {len(images)} images")
        tokenizer = self.require_tokenizer()
        samples = [SphinxSample(self.encode_text(c)) for c in conversations]
        batch = collate(samples, pad_id=tokenizer.pad_id)
        owners = [row for row, image in enumerate(images) if image is not None]
        batch.layouts = [None] * len(images)
        if owners:
            tiled = tile_batch([self.load_image(images[row]) for row in owners], self.tiling)
            batch.pixel_values, batch.image_index = tiled.pixel_values, tiled.image_index
            batch.image_owner = torch.tensor(owners, dtype=torch.long)
            for row, layout in zip(owners, tiled.layouts, strict=True):
                batch.layouts[row] = layout
        return batch

    # -- saving -------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {
            "format_version": 1,
            "tiling": self.tiling.to_dict(),
            "template": self.template.to_dict(),
            "decoding": self.decoding,
            "generation": self.generation.to_dict(),
        }

    def save_pretrained(self, directory: str | Path) -> None:
        """Write ``processor.json`` and ``tokenizer/`` into an existing (staging) folder."""
        directory = Path(directory)
        (directory / PROCESSOR_FILE).write_text(json.dumps(self.to_dict(), indent=2))
        if self.tokenizer is not None:
            (directory / TOKENIZER_FOLDER).mkdir(exist_ok=True)
            self.tokenizer.save(directory / TOKENIZER_FOLDER)

    @classmethod
    def from_dict(cls, data: dict, tokenizer=None, source: str = PROCESSOR_FILE):
        from sphinx_tasks import Template
        from sphinx_tiling import Preset

        expected = {"format_version", "tiling", "template", "decoding", "generation"}
        if not isinstance(data, dict) or set(data) != expected:
            found = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"{source}: expected the keys {sorted(expected)}, found {found}")
        if data["format_version"] != 1:
            raise ValueError(f"{source}: format_version {data['format_version']!r} (expected 1)")
        parts = {}
        for key, kind in (("tiling", Preset), ("template", Template)):
            try:
                parts[key] = kind.from_dict(data[key])
            except (TypeError, ValueError, AttributeError) as err:
                raise ValueError(f"{source}: {key}: {one_line(err)}") from None
        generation = GenerationPreset.from_dict(data["generation"], f"{source}: generation")
        try:
            return cls(
                parts["tiling"], parts["template"], tokenizer,
                decoding=data["decoding"], generation=generation,
            )  # fmt: skip
        except ValueError as err:
            raise ValueError(f"{source}: {one_line(err)}") from None

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, tokenizer=None, config=None):
        """Read ``processor.json`` (or, for older folders, the names in ``config.json``)."""
        directory = Path(directory)
        if isinstance(tokenizer, (str, Path)):
            tokenizer = load_tokenizer(tokenizer)
        if tokenizer is None and (directory / TOKENIZER_FOLDER).is_dir():
            tokenizer = load_tokenizer(directory / TOKENIZER_FOLDER)
        path = directory / PROCESSOR_FILE
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as err:
                raise ValueError(f"{path}: not valid JSON ({one_line(err)})") from None
            return cls.from_dict(data, tokenizer, str(path))
        if config is None:
            raise FileNotFoundError(f"{path}: not found")
        return cls(config.tiling, config.template, tokenizer)


def check_conversation(conversation: object) -> None:
    """A question string or a list of messages, in text that can be encoded (no lone surrogates)."""
    if isinstance(conversation, str):
        texts = [conversation]
    elif isinstance(conversation, Sequence) and not isinstance(conversation, bytes):
        texts = [
            value
            for message in conversation
            if isinstance(message, dict)
            for value in (message.get("content"), message.get("value"))
            if isinstance(value, str)
        ]
    else:
        raise ValueError(
            f"conversation: expected a question string or a list of messages, "
            f"got {type(conversation).__name__}"
        )
    for text in texts:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as err:
            raise ValueError(
                f"conversation: character {err.start} ({text[err.start]!r}) is a lone "
                "surrogate, not valid Unicode text"
            ) from None
