"""Our checkpoint folder: a plain Hugging Face LLM folder, the encoder, the tokenizer, a config.

```
model/
  config.json           SphinxConfig: tiling, template, encoder preset + its full config
  llm/                  LlamaForCausalLM.from_pretrained works on this alone
  encoder.safetensors   every encoder weight (backbones, projections, start/end tokens)
  tokenizer/            tokenizer.model or a Hugging Face tokenizer folder
```
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from sphinx_train.config import SphinxConfig
from sphinx_train.model import SphinxModel
from sphinx_train.tokenizer import load_tokenizer

CONFIG_FILE = "config.json"
LLM_FOLDER = "llm"
ENCODER_FILE = "encoder.safetensors"
TOKENIZER_FOLDER = "tokenizer"


def write_folder_atomically(target: str | Path, fill: Callable[[Path], None]) -> Path:
    """Let ``fill`` write into a temporary sibling folder, then move it to ``target``.

    An interrupted save leaves the previous ``target`` (if any) untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        fill(staging)
        if target.exists():
            retired = target.with_name(f".{target.name}.old-{os.getpid()}")
            target.rename(retired)
            staging.rename(target)
            shutil.rmtree(retired)
        else:
            staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def save_model(model: SphinxModel, directory: str | Path) -> Path:
    """Save weights as safetensors plus everything needed to rebuild the composition."""
    from safetensors.torch import save_model as save_module

    def fill(folder: Path) -> None:
        model.llm.save_pretrained(folder / LLM_FOLDER)
        if model.encoder is not None:
            save_module(model.encoder, str(folder / ENCODER_FILE))
        if model.tokenizer is not None:
            (folder / TOKENIZER_FOLDER).mkdir()
            model.tokenizer.save(folder / TOKENIZER_FOLDER)
        (folder / CONFIG_FILE).write_text(json.dumps(model.config.to_dict(), indent=2))

    return write_folder_atomically(directory, fill)


def _stored_dtype(path: Path) -> torch.dtype | None:
    """The floating dtype the file stores (the first floating tensor's), so loading keeps it."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        for key in handle.keys():  # noqa: SIM118 (safe_open is not iterable)
            dtype = handle.get_slice(key).get_dtype()
            if dtype in _SAFETENSORS_FLOATS:
                return _SAFETENSORS_FLOATS[dtype]
    return None


_SAFETENSORS_FLOATS = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


def load_model(
    directory: str | Path,
    *,
    dtype: torch.dtype | str = "auto",
    device: str | torch.device | None = None,
    tokenizer=None,
) -> SphinxModel:
    """Load a folder written by :func:`save_model` (or by ``convert-accessory``)."""
    from safetensors.torch import load_model as load_module
    from transformers import AutoModelForCausalLM

    from sphinx_train.presets import build_encoder

    directory = Path(directory)
    config_path = directory / CONFIG_FILE
    if not config_path.is_file():
        raise FileNotFoundError(
            f"{config_path}: not found; is {directory} a sphinx-train model folder?"
        )
    config = SphinxConfig.from_file(config_path)
    llm = AutoModelForCausalLM.from_pretrained(
        directory / LLM_FOLDER, dtype=dtype, local_files_only=True
    )
    encoder = None
    if config.encoder_config is not None:
        encoder_path = directory / ENCODER_FILE
        if not encoder_path.is_file():
            raise FileNotFoundError(
                f"{encoder_path}: not found, but {config_path} names an encoder"
            )
        encoder_dtype = dtype if isinstance(dtype, torch.dtype) else _stored_dtype(encoder_path)
        encoder = build_encoder(config.encoder_config, llm.config.hidden_size, dtype=encoder_dtype)
        missing, unexpected = load_module(encoder, str(encoder_path), strict=False)
        if missing or unexpected:
            raise ValueError(
                f"{encoder_path}: does not match the encoder in {config_path}: "
                f"missing {sorted(missing)[:10]}, unexpected {sorted(unexpected)[:10]}"
            )
    if tokenizer is None and (directory / TOKENIZER_FOLDER).is_dir():
        tokenizer = load_tokenizer(directory / TOKENIZER_FOLDER)
    model = SphinxModel(llm, encoder, tokenizer, config)
    if device is not None:
        model.to(device)
    return model.eval()
