"""Our checkpoint folder: a plain Hugging Face LLM folder, the encoder, the processor, a config.

```
model/
  config.json           SphinxConfig: tiling, template, encoder preset + its full config
  processor.json        SphinxProcessor: tiling preset and template in full, decoding, generation
  llm/                  LlamaForCausalLM.from_pretrained works on this alone
  encoder.safetensors   every encoder weight (backbones, projections, start/end tokens)
  tokenizer/            tokenizer.model or a Hugging Face tokenizer folder
```

Saving follows the house output rules: an existing folder is refused unless ``overwrite``, and
even then it is replaced only when it holds nothing but these files.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from sphinx_train._house import confined_path, one_line, staged_dir

if TYPE_CHECKING:
    import torch

    from sphinx_train.model import SphinxModel

CONFIG_FILE = "config.json"
PROCESSOR_FILE = "processor.json"
LLM_FOLDER = "llm"
ENCODER_FILE = "encoder.safetensors"
TOKENIZER_FOLDER = "tokenizer"
SAFETENSORS_INDEX = "model.safetensors.index.json"
SINGLE_SAFETENSORS = "model.safetensors"
# Exactly what save_model / convert_accessory write: the only files an overwrite may replace.
OWNED_FILES = (
    CONFIG_FILE,
    PROCESSOR_FILE,
    ENCODER_FILE,
    f"{LLM_FOLDER}/*",
    f"{TOKENIZER_FOLDER}/*",
)


def write_model_folder(
    target: str | Path,
    fill: Callable[[Path], None],
    *,
    inputs: Iterable[str | Path] = (),
    overwrite: bool = False,
) -> Path:
    """Let ``fill`` write into a hidden staging folder that becomes ``target`` when complete."""
    with staged_dir(target, inputs, overwrite=overwrite, owns=OWNED_FILES) as stage:
        fill(stage)
    return Path(target)


def save_model(model: SphinxModel, directory: str | Path, *, overwrite: bool = False) -> Path:
    """Save weights as safetensors plus everything needed to rebuild the composition."""
    from safetensors.torch import save_model as save_module

    def fill(folder: Path) -> None:
        model.llm.save_pretrained(folder / LLM_FOLDER)
        if model.encoder is not None:
            save_module(model.encoder, str(folder / ENCODER_FILE))
        model.processor.save_pretrained(folder)
        (folder / CONFIG_FILE).write_text(json.dumps(model.config.to_dict(), indent=2))

    return write_model_folder(directory, fill, overwrite=overwrite)


def check_safetensors(path: Path) -> None:
    """Open ``path``'s header so that a corrupt file fails here, naming itself."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            handle.keys()
    except Exception as err:  # safetensors raises its own error types
        raise ValueError(f"{path}: not a readable safetensors file ({one_line(err)})") from err


def llm_weight_files(folder: Path) -> list[Path]:
    """The safetensors files of a Hugging Face folder, checked to exist inside it and open."""
    index_path = folder / SAFETENSORS_INDEX
    if index_path.is_file():
        try:
            index = json.loads(index_path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{index_path}: not valid JSON ({one_line(err)})") from err
        weight_map = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(weight_map, dict) or not weight_map:
            raise ValueError(f"{index_path}: expected a non-empty 'weight_map' object")
        names = set()
        for key, name in weight_map.items():
            if not isinstance(name, str):
                raise ValueError(f"{index_path}: weight_map[{key!r}] is not a file name")
            names.add(name)
        files = [
            confined_path(folder, name, what=f"{index_path}: weight file") for name in sorted(names)
        ]
    elif (folder / SINGLE_SAFETENSORS).is_file():
        files = [folder / SINGLE_SAFETENSORS]
    else:
        raise FileNotFoundError(f"{folder}: no {SINGLE_SAFETENSORS} or {SAFETENSORS_INDEX}")
    for path in files:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: named by {index_path.name} but not found")
        check_safetensors(path)
    return files


def load_llm(folder: Path, *, dtype="auto", device_map=None, max_memory=None):
    """A strictly loaded causal LM: every weight of its architecture must be in the folder."""
    from transformers import AutoModelForCausalLM

    if not (folder / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{folder / CONFIG_FILE}: not found (the LLM's config)")
    llm_weight_files(folder)
    options = {"dtype": dtype, "local_files_only": True, "output_loading_info": True}
    if device_map is not None:
        options.update(device_map=device_map, max_memory=max_memory)
    llm, info = AutoModelForCausalLM.from_pretrained(folder, **options)
    missing, unexpected = (
        sorted(info.get("missing_keys", ())),
        sorted(info.get("unexpected_keys", ())),
    )
    mismatched = sorted(str(item[0]) for item in info.get("mismatched_keys", ()))
    if missing or unexpected or mismatched:
        parts = [
            f"{label} {names[:8]}{' ...' if len(names) > 8 else ''}"
            for label, names in (
                ("missing", missing), ("unexpected", unexpected), ("wrong shape", mismatched)
            )
            if names
        ]  # fmt: skip
        raise ValueError(f"{folder}: the LLM weights do not match its config: {'; '.join(parts)}")
    return llm


def _stored_dtype(path: Path) -> torch.dtype | None:
    """The floating dtype the file stores (the first floating tensor's), so loading keeps it."""
    import torch
    from safetensors import safe_open

    floats = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
    with safe_open(str(path), framework="pt") as handle:
        for key in handle.keys():  # noqa: SIM118 (safe_open is not iterable)
            dtype = handle.get_slice(key).get_dtype()
            if dtype in floats:
                return floats[dtype]
    return None


def resolve_dtype(dtype) -> torch.dtype | None:
    """A torch dtype from any name of the house vocabulary (None stays None)."""
    import torch

    from sphinx_train._house import dtype_name

    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    return getattr(torch, dtype_name(dtype))


def check_device(device) -> None:
    """Refuse a device this machine lacks before anything big is built."""
    import torch

    if device is None:
        return
    try:
        target = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device {device!r}: not a torch device ({one_line(err)})") from None
    if target.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: CUDA is not available on this machine")
    count = torch.cuda.device_count() if target.type == "cuda" else 0
    if target.type == "cuda" and target.index is not None and target.index >= count:
        raise ValueError(f"device {device!r}: only {count} CUDA device(s) here")


def module_bytes(module) -> int:
    """Bytes of a module's parameters and buffers (meta tensors count by shape)."""
    tensors = [*module.parameters(), *module.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def plan_device_map(llm, max_memory: dict, *, reserve: dict | None = None) -> dict[str, object]:
    """A Hugging Face ``device_map`` that fills the devices of ``max_memory`` in order.

    ``llm`` is the causal LM (a ``device="meta"`` build is enough); ``max_memory`` maps each
    device to its budget in bytes, ``reserve`` takes bytes off a device first (the visual
    encoder goes to the device of the embedding: reserve its size there). The embedding goes
    first (with the rotary table, which holds no weights), then whole decoder layers in
    order, then the final norm and the head, each on the first device whose budget still
    holds it; a tied head stays with the embedding. Pass the result to ``load_model(device_map=...)`` (loading with a map needs
    ``accelerate``, which moves activations between devices).
    """
    budgets = {
        device: int(size) - int((reserve or {}).get(device, 0))
        for device, size in max_memory.items()
    }
    devices = list(budgets)
    if not devices:
        raise ValueError("max_memory: expected at least one device")
    body = llm.model
    parts = [("model.embed_tokens", body.embed_tokens)]
    parts += [(f"model.layers.{i}", layer) for i, layer in enumerate(body.layers)]
    parts += [("model.norm", body.norm)]
    tied = bool(getattr(llm.config, "tie_word_embeddings", False))
    if not tied:
        parts.append(("lm_head", llm.lm_head))
    plan: dict[str, object] = {}
    current = 0
    for name, module in parts:
        size = module_bytes(module)
        while current < len(devices) and budgets[devices[current]] < size:
            current += 1
        if current == len(devices):
            raise ValueError(
                f"max_memory: {name} needs {size} bytes but no device has that much left "
                f"(budgets after the earlier modules: {budgets})"
            )
        plan[name] = devices[current]
        budgets[devices[current]] -= size
    plan["model.rotary_emb"] = plan["model.embed_tokens"]
    if tied:
        plan["lm_head"] = plan["model.embed_tokens"]
    return plan


def load_model(
    directory: str | Path,
    *,
    dtype: torch.dtype | str = "auto",
    device: str | torch.device | None = None,
    tokenizer=None,
    device_map: str | dict | None = None,
    max_memory: dict | None = None,
) -> SphinxModel:
    """Load a folder written by :func:`save_model` (or by ``convert-accessory``).

    ``device_map`` (``"auto"`` or a Hugging Face map) spreads the LLM over several devices for
    models that do not fit one; the encoder then goes to the device of the first LLM layer.
    """
    from safetensors.torch import load_model as load_module

    from sphinx_train.config import SphinxConfig
    from sphinx_train.model import SphinxModel
    from sphinx_train.presets import build_encoder
    from sphinx_train.processor import SphinxProcessor

    directory = Path(directory)
    config_path = directory / CONFIG_FILE
    if not config_path.is_file():
        raise FileNotFoundError(
            f"{config_path}: not found; is {directory} a sphinx-train model folder?"
        )
    if device is not None and device_map is not None:
        raise ValueError("pass device or device_map, not both")
    check_device(device)
    dtype = dtype if dtype == "auto" else resolve_dtype(dtype)
    config = SphinxConfig.from_file(config_path)
    encoder_path = directory / ENCODER_FILE
    if config.encoder_config is not None:
        if not encoder_path.is_file():
            raise FileNotFoundError(
                f"{encoder_path}: not found, but {config_path} names an encoder"
            )
        check_safetensors(encoder_path)
    processor = SphinxProcessor.from_pretrained(directory, tokenizer=tokenizer, config=config)
    llm = load_llm(
        directory / LLM_FOLDER, dtype=dtype, device_map=device_map, max_memory=max_memory
    )
    encoder = None
    if config.encoder_config is not None:
        encoder_dtype = dtype if dtype != "auto" else _stored_dtype(encoder_path)
        encoder = build_encoder(
            config.encoder_config, llm.config.hidden_size, dtype=encoder_dtype, device="meta"
        ).to_empty(device="cpu")
        missing, unexpected = load_module(encoder, str(encoder_path), strict=False)
        if missing or unexpected:
            raise ValueError(
                f"{encoder_path}: does not match the encoder in {config_path}: "
                f"missing {sorted(missing)[:10]}, unexpected {sorted(unexpected)[:10]}"
            )
    model = SphinxModel(llm, encoder, processor.tokenizer, config, processor=processor)
    if device is not None:
        model.to(device)
    elif device_map is not None and encoder is not None:
        encoder.to(model.device)
    return model.eval()
