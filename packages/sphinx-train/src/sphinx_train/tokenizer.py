"""Tokenizers behind one small interface: LLaMA's sentencepiece model, Hugging Face folders, nano.

The model needs four things from a tokenizer: ids without special tokens, character offsets
(to turn supervised character spans into labels), decoding, and saving next to the weights.
"""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from pathlib import Path

SENTENCEPIECE_FILE = "tokenizer.model"
HF_TOKENIZER_FILE = "tokenizer.json"


class TextTokenizer(ABC):
    """What :class:`~sphinx_train.SphinxModel` needs from a tokenizer."""

    bos_id: int
    eos_id: int
    pad_id: int

    @property
    @abstractmethod
    def vocab_size(self) -> int: ...

    @abstractmethod
    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids of ``text`` (no BOS/EOS) and each token's [start, end) character range."""

    @abstractmethod
    def decode(self, ids: list[int]) -> str: ...

    @abstractmethod
    def save(self, directory: str | Path) -> None: ...

    def encode(self, text: str) -> list[int]:
        return self.encode_with_offsets(text)[0]


def _fill_empty_offsets(offsets: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Give zero-width pieces (byte fallbacks of one character, a leading dummy space) the range
    of the next piece with a width, so the whole character is supervised, not only its last byte."""
    filled = list(offsets)
    following: tuple[int, int] | None = None
    for index in range(len(filled) - 1, -1, -1):
        start, end = filled[index]
        if end > start:
            following = (start, end)
        elif following is not None:
            filled[index] = following
    return filled


class SentencePieceTokenizer(TextTokenizer):
    """LLaMA's ``tokenizer.model``, run by sentencepiece exactly as the reference code does."""

    def __init__(self, model_file: str | Path):
        import sentencepiece

        self.model_file = Path(model_file)
        if not self.model_file.is_file():
            raise FileNotFoundError(f"{self.model_file}: sentencepiece model not found")
        self._processor = sentencepiece.SentencePieceProcessor(model_file=str(self.model_file))
        self.bos_id = self._processor.bos_id()
        self.eos_id = self._processor.eos_id()
        pad = self._processor.pad_id()
        # LLaMA has no pad piece; id 0 (<unk>) is what the reference pads with.
        self.pad_id = pad if pad >= 0 else 0

    @property
    def vocab_size(self) -> int:
        return self._processor.vocab_size()

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        if not text:
            return [], []
        encoded = self._processor.encode(text, return_type="offset_mapping")
        offsets = [(int(start), int(end)) for start, end in encoded["offsets"]]
        return list(encoded["ids"]), _fill_empty_offsets(offsets)

    def encode(self, text: str) -> list[int]:
        return list(self._processor.encode(text)) if text else []

    def decode(self, ids: list[int]) -> str:
        return self._processor.decode(list(ids))

    def save(self, directory: str | Path) -> None:
        shutil.copyfile(self.model_file, Path(directory) / SENTENCEPIECE_FILE)


class HuggingFaceTokenizer(TextTokenizer):
    """A fast (``tokenizers``-backed) Hugging Face tokenizer, from a local folder or an object."""

    def __init__(self, tokenizer):
        if not getattr(tokenizer, "is_fast", False):
            raise TypeError("a fast Hugging Face tokenizer is needed for character offsets")
        self._tokenizer = tokenizer
        if tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer defines no EOS token")
        self.eos_id = tokenizer.eos_token_id
        self.bos_id = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else self.eos_id
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_id

    @classmethod
    def from_folder(cls, directory: str | Path) -> HuggingFaceTokenizer:
        from transformers import AutoTokenizer

        return cls(AutoTokenizer.from_pretrained(str(directory), local_files_only=True))

    @property
    def vocab_size(self) -> int:
        return len(self._tokenizer)

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        encoded = self._tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        offsets = [(int(start), int(end)) for start, end in encoded["offset_mapping"]]
        return list(encoded["input_ids"]), _fill_empty_offsets(offsets)

    def decode(self, ids: list[int]) -> str:
        return self._tokenizer.decode(list(ids), skip_special_tokens=True)

    def save(self, directory: str | Path) -> None:
        self._tokenizer.save_pretrained(str(directory))


def load_tokenizer(path: str | Path) -> TextTokenizer:
    """A ``tokenizer.model`` file, or a folder holding one or a Hugging Face ``tokenizer.json``."""
    path = Path(path)
    if path.is_file():
        if path.suffix != ".model":
            raise ValueError(
                f"{path}: expected a sentencepiece '.model' file or a tokenizer folder"
            )
        return SentencePieceTokenizer(path)
    if (path / SENTENCEPIECE_FILE).is_file():
        return SentencePieceTokenizer(path / SENTENCEPIECE_FILE)
    if (path / HF_TOKENIZER_FILE).is_file():
        return HuggingFaceTokenizer.from_folder(path)
    raise FileNotFoundError(f"{path}: no {SENTENCEPIECE_FILE} or {HF_TOKENIZER_FILE} found")
