"""Convert a reference (LLaMA2-Accessory) SPHINX checkpoint into our model folder.

The reference stores model-parallel shards ``consolidated.XX-of-YY.model.pth`` whose keys start
with ``llma.``. Column-parallel weights are split on dim 0, row-parallel ones on dim 1, the
token embedding on dim 1, and everything else is replicated. Its RoPE rotates interleaved
pairs, so q/k rows are permuted into the half-split order Hugging Face LLaMA uses.
"""

from __future__ import annotations

import json
import re
import shutil
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

import torch
from tqdm import tqdm

from sphinx_train._house import one_line, unwrap_state_dict
from sphinx_train.checkpoint import (
    CONFIG_FILE,
    ENCODER_FILE,
    LLM_FOLDER,
    TOKENIZER_FOLDER,
    resolve_dtype,
    write_model_folder,
)
from sphinx_train.config import SphinxConfig
from sphinx_train.llm import LlamaShape, build_llm, llama_config, swiglu_hidden_size
from sphinx_train.tokenizer import SENTENCEPIECE_FILE, SentencePieceTokenizer

LLAMA_TYPE_TO_TILING = {
    "llama_ens": "sphinx",
    "llama_ens5": "sphinx-1k",
    "llama_ens10": "sphinx-2k",
    "llama_ens_light": "sphinx-light",
    "llama_ens5_light": "sphinx-light-1k",
    # SPHINX-MoE views as SPHINX-Tiny: 512 (global) or 1024 (global + 2x2)
    "mixtral_sparse_ens": "sphinx-light",
    "mixtral_sparse_ens5": "sphinx-light-1k",
}
# The encoder preset each llama_type builds (SPHINX-Tiny: no CLIP, no Q-Former).
LLAMA_TYPE_TO_ENCODER = {
    "llama_ens": "sphinx",
    "llama_ens5": "sphinx",
    "llama_ens10": "sphinx",
    "llama_ens_light": "sphinx-light",
    "llama_ens5_light": "sphinx-light-1k",
    "mixtral_sparse_ens": "sphinx-moe",
    "mixtral_sparse_ens5": "sphinx-moe-1k",
}
SHARD_NAME = re.compile(r"^consolidated\.(\d{2})-of-(\d{2})\.model\.pth$")
PREFIX = "llma."
VISION_PREFIXES = (
    "qformer.",
    "clip.",
    "openclip_convnext_xxl.",
    "dinov2_vitg14.",
    "qformer_proj.",
    "visual_proj.",
)
VISION_KEYS = ("start_img", "end_img")
# Fields of the reference ModelArgs that may appear in config.json.
REFERENCE_ARGS = {
    "dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "multiple_of",
    "ffn_dim_multiplier", "norm_eps", "rope_theta", "max_batch_size", "max_seq_len",
    "rope_scaling", "load_pretrained_visual_encoder",
}  # fmt: skip
# Reference name -> (Hugging Face name, dim the shards are concatenated on; None = replicated).
_LAYER_KEYS = {
    "attention.wq.weight": ("self_attn.q_proj.weight", 0),
    "attention.wk.weight": ("self_attn.k_proj.weight", 0),
    "attention.wv.weight": ("self_attn.v_proj.weight", 0),
    "attention.wo.weight": ("self_attn.o_proj.weight", 1),
    "feed_forward.w1.weight": ("mlp.gate_proj.weight", 0),
    "feed_forward.w2.weight": ("mlp.down_proj.weight", 1),
    "feed_forward.w3.weight": ("mlp.up_proj.weight", 0),
    "attention_norm.weight": ("input_layernorm.weight", None),
    "ffn_norm.weight": ("post_attention_layernorm.weight", None),
}
_TOP_KEYS = {
    "tok_embeddings.weight": ("model.embed_tokens.weight", 1),
    "norm.weight": ("model.norm.weight", None),
    "output.weight": ("lm_head.weight", 0),
}
_LAYER_KEY = re.compile(r"^layers\.(\d+)\.(.+)$")
LLM_SHARD_BYTES = 2 * 1024**3


class ConversionError(ValueError):
    """The source folder is not a checkpoint this converter understands."""


def hf_name(reference_key: str) -> tuple[str, int | None]:
    """Hugging Face name and split dim of an LLM key (without ``llma.``)."""
    if reference_key in _TOP_KEYS:
        return _TOP_KEYS[reference_key]
    match = _LAYER_KEY.match(reference_key)
    if match and match.group(2) in _LAYER_KEYS:
        name, dim = _LAYER_KEYS[match.group(2)]
        return f"model.layers.{match.group(1)}.{name}", dim
    raise KeyError(reference_key)


def _known_llm_key(key: str) -> bool:
    try:
        hf_name(key)
    except KeyError:
        return False
    return True


def permute_for_hf_rope(weight: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Reorder each head's rows from interleaved (re, im) pairs to [all re | all im]."""
    out_dim, in_dim = weight.shape
    head_dim = out_dim // n_heads
    return weight.view(n_heads, head_dim // 2, 2, in_dim).transpose(1, 2).reshape(out_dim, in_dim)


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise ConversionError(f"{path}: not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConversionError(f"{path}: not valid JSON ({one_line(err)})") from err
    if not isinstance(data, dict):
        raise ConversionError(f"{path}: expected a JSON object")
    return data


def find_shards(source: Path) -> list[Path]:
    """The ``consolidated.XX-of-YY.model.pth`` files, checked to be one complete set."""
    found = {}
    totals = set()
    for path in source.iterdir():
        match = SHARD_NAME.match(path.name)
        if match:
            found[int(match.group(1))] = path
            totals.add(int(match.group(2)))
    if not found:
        raise ConversionError(f"{source}: no consolidated.XX-of-YY.model.pth shards")
    if len(totals) != 1:
        raise ConversionError(
            f"{source}: shards from different model-parallel sizes {sorted(totals)}"
        )
    total = totals.pop()
    if sorted(found) != list(range(total)):
        missing = sorted(set(range(total)) - set(found))
        raise ConversionError(f"{source}: shards {missing} of {total} are missing")
    return [found[rank] for rank in range(total)]


def _stored_zip(path: Path) -> bool:
    """Whether ``path`` is a torch zip whose members are stored uncompressed (safe to mmap)."""
    if not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return all(info.compress_type == zipfile.ZIP_STORED for info in archive.infolist())
    except (zipfile.BadZipFile, OSError):
        return False


def _load_shard(path: Path) -> dict[str, torch.Tensor]:
    # mmap maps the bytes as they are on disk: a re-packed (deflated) zip would load garbage.
    mmap = _stored_zip(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
        state = unwrap_state_dict(data, path)
    except ValueError as err:
        raise ConversionError(one_line(err)) from None
    except Exception as err:  # torch raises many types for unreadable or unsafe files
        raise ConversionError(
            f"{path}: cannot be read as a weights-only checkpoint ({one_line(err)})"
        ) from None
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConversionError(f"{path}: expected {{'model': state_dict}} of tensors")
    unprefixed = [key for key in state if not key.startswith(PREFIX)]
    if unprefixed:
        raise ConversionError(f"{path}: keys without the '{PREFIX}' prefix: {unprefixed[:5]}")
    return {key[len(PREFIX) :]: value for key, value in state.items()}


def _is_vision(key: str) -> bool:
    return key.startswith(VISION_PREFIXES) or key in VISION_KEYS


def _replicated(
    key: str, pieces: list[torch.Tensor], shards: list[Path], differing: list[str]
) -> torch.Tensor:
    """Shard 0's copy of a replicated weight; keys whose copies differ go to ``differing``."""
    for rank, piece in enumerate(pieces[1:], start=1):
        if piece.shape != pieces[0].shape:
            raise ConversionError(
                f"{shards[rank]}: replicated weight {PREFIX}{key} has shape "
                f"{tuple(piece.shape)}, shard 0 {tuple(pieces[0].shape)}"
            )
        if not torch.equal(piece, pieces[0]):
            differing.append(PREFIX + key)  # the reference warns and keeps shard 0 as well
            break
    return pieces[0]


def _positive_int(args: dict, key: str, source: Path, default=None) -> int:
    value = args.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConversionError(f"{source}: {key}={value!r}, expected a positive integer")
    return value


def _number(args: dict, key: str, source: Path, default: float) -> float:
    value = args.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConversionError(f"{source}: {key}={value!r}, expected a positive number")
    return float(value)


def reference_shape(args: dict, source: Path) -> LlamaShape:
    """The LLaMA shape a reference ``config.json`` describes (the vocabulary comes from the weights)."""
    unknown = sorted(set(args) - REFERENCE_ARGS)
    if unknown:
        raise ConversionError(
            f"{source}: unknown keys {unknown}; expected some of {sorted(REFERENCE_ARGS)}"
        )
    if args.get("rope_scaling") is not None:
        raise ConversionError(f"{source}: rope_scaling={args['rope_scaling']} is not supported")
    for key in ("dim", "n_layers", "n_heads"):
        if key not in args:
            raise ConversionError(f"{source}: missing key {key!r}")
    dim, n_heads = _positive_int(args, "dim", source), _positive_int(args, "n_heads", source)
    n_kv_heads = _positive_int(args, "n_kv_heads", source, args.get("n_kv_heads") or n_heads)
    if dim % n_heads or (dim // n_heads) % 2 or n_heads % n_kv_heads:
        raise ConversionError(
            f"{source}: dim={dim}, n_heads={n_heads}, n_kv_heads={n_kv_heads}: expected dim "
            "divisible by n_heads into an even head size, and n_heads by n_kv_heads"
        )
    multiplier = args.get("ffn_dim_multiplier")
    if multiplier is not None:
        multiplier = _number(args, "ffn_dim_multiplier", source, 1.0)
    return LlamaShape(
        hidden_size=dim,
        intermediate_size=swiglu_hidden_size(
            dim, _positive_int(args, "multiple_of", source, 256), multiplier
        ),
        num_hidden_layers=_positive_int(args, "n_layers", source),
        num_attention_heads=n_heads,
        num_key_value_heads=n_kv_heads,
        rms_norm_eps=_number(args, "norm_eps", source, 1e-5),
        rope_theta=_number(args, "rope_theta", source, 10000.0),
    )


def _llm_tensors(
    shard_states: list[dict[str, torch.Tensor]],
    llm_keys: list[str],
    shape: LlamaShape,
    shards: list[Path],
    dtype: torch.dtype | None,
    differing: list[str],
) -> Iterator[tuple[str, torch.Tensor]]:
    """Merge, permute and rename each LLM weight, one at a time (bounded memory)."""
    for key in llm_keys:
        name, dim = hf_name(key)
        pieces = [state[key] for state in shard_states]
        if dim is None:
            tensor = _replicated(key, pieces, shards, differing)
        else:
            _check_pieces(key, pieces, dim, shards)
            tensor = torch.cat(pieces, dim=dim)
        if name.endswith("q_proj.weight"):
            tensor = permute_for_hf_rope(tensor, shape.num_attention_heads)
        elif name.endswith("k_proj.weight"):
            tensor = permute_for_hf_rope(
                tensor, shape.num_key_value_heads or shape.num_attention_heads
            )
        yield name, (tensor if dtype is None else tensor.to(dtype)).contiguous()


def _check_pieces(key: str, pieces: list[torch.Tensor], dim: int, shards: list[Path]) -> None:
    """Model-parallel pieces must be 2-D and agree on every dim but the split one."""
    for rank, piece in enumerate(pieces):
        if piece.ndim != 2:
            raise ConversionError(
                f"{shards[rank]}: {PREFIX}{key} has shape {tuple(piece.shape)}, expected 2-D"
            )
        kept = 1 - dim
        if piece.shape[kept] != pieces[0].shape[kept]:
            raise ConversionError(
                f"{shards[rank]}: {PREFIX}{key} has shape {tuple(piece.shape)} but shard 0 has "
                f"{tuple(pieces[0].shape)} (a shard of another model?)"
            )


def _write_llm(
    folder: Path, config, tensors: Iterator[tuple[str, torch.Tensor]], expected: dict
) -> None:
    """Write a Hugging Face folder in safetensors files of bounded size, checking every shape."""
    from safetensors.torch import save_file

    folder.mkdir(exist_ok=True)
    weight_map: dict[str, str] = {}
    pending: dict[str, torch.Tensor] = {}
    pending_bytes = 0
    files: list[str] = []

    def flush() -> None:
        nonlocal pending, pending_bytes
        if pending:
            name = f"model-{len(files) + 1:05d}.safetensors"
            save_file(pending, str(folder / name), metadata={"format": "pt"})
            files.append(name)
            weight_map.update(dict.fromkeys(pending, name))
            pending, pending_bytes = {}, 0

    for name, tensor in tensors:
        if name not in expected:
            raise ConversionError(f"{name}: not a weight of the target LLM")
        if tuple(tensor.shape) != tuple(expected[name]):
            raise ConversionError(
                f"{name}: merged shape {tuple(tensor.shape)}, expected {tuple(expected[name])} "
                "from config.json and the token embedding"
            )
        pending[name] = tensor
        pending_bytes += tensor.numel() * tensor.element_size()
        if pending_bytes >= LLM_SHARD_BYTES:
            flush()
    flush()
    missing = sorted(set(expected) - set(weight_map))
    if missing:
        raise ConversionError(f"the checkpoint lacks LLM weights {missing[:10]}")
    if len(files) == 1:
        (folder / files[0]).rename(folder / "model.safetensors")
    else:
        index = {"metadata": {}, "weight_map": weight_map}
        (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    config.save_pretrained(folder)


def _llm_shape(source: Path, llm_args: dict | str | None) -> tuple[LlamaShape, dict, Path]:
    """The LLM shape, the reference ModelArgs and where they came from: config.json, or (for
    the first-release layout) a shape name or ModelArgs given by hand."""
    if llm_args is None:
        args, where = _read_json(source / "config.json"), source / "config.json"
    elif isinstance(llm_args, str):
        from sphinx_train.llm import LLM_SHAPES

        if llm_args not in LLM_SHAPES:
            raise ConversionError(
                f"LLM shape {llm_args!r}: expected one of {sorted(LLM_SHAPES)} or reference "
                "ModelArgs (dim, n_layers, n_heads, ...)"
            )
        return LLM_SHAPES[llm_args], {}, Path(f"LLM shape {llm_args}")
    else:
        args, where = dict(llm_args), Path("the given LLM arguments")
    return reference_shape(args, where), args, where


def _encoder_config(encoder: str, args: dict) -> dict | str:
    """The encoder preset, with QuickGELU CLIP when the reference would load OpenAI's CLIP."""
    if not args.get("load_pretrained_visual_encoder"):
        return encoder
    from sphinx_encoders import get_encoder_config

    config = get_encoder_config(encoder).to_dict()
    for backbone in config["patch_encoders"]:
        if "quick_gelu" in backbone:  # open_clip pretrained='openai' builds QuickGELU
            backbone["quick_gelu"] = True
    return config


def convert_accessory(
    source: str | Path,
    output: str | Path,
    *,
    encoder: str | None = None,
    tokenizer: str | Path | None = None,
    dtype: str | torch.dtype | None = None,
    overwrite: bool = False,
    llama_type: str | None = None,
    llm_args: dict | str | None = None,
) -> Path:
    """Convert ``source`` (reference shards + config.json + meta.json + tokenizer.model).

    ``encoder`` is the sphinx-encoders preset whose architecture the vision weights fill
    (default: the one ``llama_type`` builds, see ``LLAMA_TYPE_TO_ENCODER``);
    ``dtype`` converts all weights (default: keep the checkpoint's). The first release held
    only the shards: then pass ``llama_type`` (instead of meta.json), ``llm_args`` (an LLM
    shape name such as ``"llama2-13b"`` or the reference ModelArgs, instead of config.json)
    and ``tokenizer``. The output must not be, hold or lie in the source; an existing
    output folder is replaced only with ``overwrite`` and only if it holds our files alone.
    """
    from safetensors.torch import save_model as save_module

    from sphinx_train._house import check_output
    from sphinx_train.presets import build_encoder

    source = Path(source)
    if not source.is_dir():
        raise ConversionError(f"{source}: not a folder")
    tokenizer_path = Path(tokenizer) if tokenizer else source / SENTENCEPIECE_FILE
    check_output(output, [source, tokenizer_path], overwrite=overwrite)
    try:
        dtype = resolve_dtype(dtype)
    except ValueError as err:
        raise ConversionError(str(err)) from None
    if llama_type is None:
        llama_type = _read_json(source / "meta.json").get("llama_type")
    if not isinstance(llama_type, str) or llama_type not in LLAMA_TYPE_TO_TILING:
        raise ConversionError(
            f"{source / 'meta.json'}: llama_type {llama_type!r} is not supported; "
            f"expected one of {sorted(LLAMA_TYPE_TO_TILING)}"
        )
    encoder = encoder or LLAMA_TYPE_TO_ENCODER[llama_type]
    moe = llama_type.startswith("mixtral_sparse_ens")
    if moe and llm_args is not None and not isinstance(llm_args, dict):
        raise ConversionError(f"LLM shape {llm_args!r}: a Mixtral checkpoint needs its "
                              "ModelArgs (dim, n_layers, n_heads, moe, ...), not a shape name")
    if moe:  # the Mixtral ModelArgs: the LLaMA fields plus moe, hidden_dim, ...
        from sphinx_train.moe import mixtral_llama_args

        args_source = source / "config.json" if llm_args is None else Path("the LLM arguments")
        args = _read_json(args_source) if llm_args is None else dict(llm_args)
        shape = reference_shape(mixtral_llama_args(args), args_source)
    else:
        shape, args, args_source = _llm_shape(source, llm_args)
    if not tokenizer_path.is_file():
        raise ConversionError(f"{tokenizer_path}: tokenizer not found")
    shards = find_shards(source)
    shard_states = [_load_shard(path) for path in tqdm(shards, desc="reading shards", unit="shard")]
    keys = list(shard_states[0])
    for path, state in zip(shards[1:], shard_states[1:], strict=True):
        if set(state) != set(keys):
            difference = sorted(set(state) ^ set(keys))
            raise ConversionError(
                f"{path}: holds other keys than {shards[0].name}: {difference[:5]}"
            )
    vision_keys = [key for key in keys if _is_vision(key)]
    llm_keys = [key for key in keys if not _is_vision(key)]
    known = _known_llm_key
    if moe:
        from sphinx_train.moe import known_key as known
    unknown = [key for key in llm_keys if not known(key)]
    if unknown:
        raise ConversionError(f"{shards[0]}: unknown key {PREFIX}{unknown[0]}")
    if "tok_embeddings.weight" not in llm_keys:
        raise ConversionError(f"{shards[0]}: no {PREFIX}tok_embeddings.weight")
    embeddings = [state["tok_embeddings.weight"] for state in shard_states]
    _check_pieces("tok_embeddings.weight", embeddings, 1, shards)
    vocab_size = embeddings[0].shape[0]
    width = sum(piece.shape[1] for piece in embeddings)
    if width != shape.hidden_size:
        raise ConversionError(
            f"{shards[0]}: token embedding is {width} wide but {args_source} says "
            f"dim={shape.hidden_size}"
        )
    text_tokenizer = SentencePieceTokenizer(tokenizer_path)
    if text_tokenizer.vocab_size != vocab_size:
        raise ConversionError(
            f"{tokenizer_path}: {text_tokenizer.vocab_size} tokens but the checkpoint embeds {vocab_size}"
        )
    ids = {"bos_token_id": text_tokenizer.bos_id, "eos_token_id": text_tokenizer.eos_id}
    if moe:
        from sphinx_train.moe import mixtral_config_from_shards

        # the ModelArgs default of load_balancing_weight: 0.01 in mixtral_sparse_ens5
        default = 0.01 if llama_type == "mixtral_sparse_ens5" else 0.1
        hf_config = mixtral_config_from_shards(args, shard_states, shards, args_source,
                                               default, **ids)
    else:
        hf_config = llama_config(shape, vocab_size, **ids)
    stored_dtype = dtype or embeddings[0].dtype
    hf_config.dtype = stored_dtype
    expected = {
        name: tuple(t.shape) for name, t in build_llm(hf_config, device="meta").state_dict().items()
    }
    encoder_spec = _encoder_config(encoder, args)
    differing: list[str] = []

    def fill(folder: Path) -> None:
        from sphinx_train.processor import SphinxProcessor

        if moe:
            from sphinx_train.moe import mixtral_tensors

            tensors = mixtral_tensors(shard_states, llm_keys, hf_config, shards, dtype, differing)
        else:
            tensors = _llm_tensors(shard_states, llm_keys, shape, shards, dtype, differing)
        _write_llm(
            folder / LLM_FOLDER,
            hf_config,
            tqdm(tensors, total=None if moe else len(llm_keys), desc="LLM", unit="tensor"),
            expected,
        )
        vision = {
            key: _replicated(key, [s[key] for s in shard_states], shards, differing)
            for key in vision_keys
        }
        # The strict load overwrites every tensor, so skip the random init (minutes for the
        # 3.4B-parameter `sphinx` encoder): build on meta, then allocate uninitialised memory.
        visual_encoder = build_encoder(
            encoder_spec, shape.hidden_size, dtype=stored_dtype, device="meta"
        ).to_empty(device="cpu")
        try:
            visual_encoder.load_reference_state_dict(vision, strict=True)
        except (KeyError, RuntimeError, ValueError) as err:
            raise ConversionError(f"{shards[0]}: vision weights: {one_line(err)}") from None
        save_module(visual_encoder, str(folder / ENCODER_FILE))
        (folder / TOKENIZER_FOLDER).mkdir()
        shutil.copyfile(tokenizer_path, folder / TOKENIZER_FOLDER / SENTENCEPIECE_FILE)
        tiling = LLAMA_TYPE_TO_TILING[llama_type]
        SphinxProcessor(tiling, "sphinx").save_pretrained(folder)
        config = SphinxConfig(
            tiling=tiling,
            template="sphinx",
            encoder=encoder,
            encoder_config=visual_encoder.config.to_dict(),
        )
        (folder / CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=2))

    written = write_model_folder(output, fill, inputs=[source, tokenizer_path], overwrite=overwrite)
    if differing:
        shown = ", ".join(differing[:10]) + (" ..." if len(differing) > 10 else "")
        warnings.warn(
            f"{source}: {len(differing)} replicated weights differ between shards; took "
            f"shard 0's as the reference does: {shown}",
            stacklevel=2,
        )
    return written
