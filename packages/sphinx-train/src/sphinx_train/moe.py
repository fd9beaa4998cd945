"""SPHINX-MoE's language model (``mixtral_sparse_ens*``) as a Hugging Face ``MixtralForCausalLM``.

The reference keeps each layer's experts in three stacked matrices of shape
``(num_experts * hidden_dim, dim)`` (``feed_forward.w1``, ``w2``, ``w3``, no ``.weight``);
model-parallel shards hold a slice of every expert's hidden units, so merging views each piece
as ``(num_experts, hidden_dim / mp, dim)`` and concatenates on the middle dim. ``w1`` and
``w3`` act as ``x @ w.T``, ``w2`` as ``x @ w`` (no transpose). The router ``gate`` is an
ordinary replicated ``nn.Linear(dim, num_experts)``. Routing is the same as Hugging Face's:
softmax in float32 over all experts, top-k, weights renormalised to sum to one.

Transformers stores the experts fused: ``gate_up_proj[e] = [w1_e ; w3_e]`` and
``down_proj[e] = w2_e.T``. Attention, norms, embedding and head follow the LLaMA rules of
:mod:`sphinx_train.accessory`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import torch
from tqdm import tqdm

from sphinx_train.accessory import (
    PREFIX,
    ConversionError,
    _check_pieces,
    _is_vision,
    _load_shard,
    _positive_int,
    _read_json,
    _replicated,
    _write_llm,
    find_shards,
    hf_name,
    permute_for_hf_rope,
    reference_shape,
)

MIXTRAL_LLAMA_TYPES = ("mixtral_sparse_ens", "mixtral_sparse_ens5")
# Fields of the reference Mixtral ModelArgs beyond the LLaMA ones.
MIXTRAL_ARGS = {"hidden_dim", "head_dim", "moe", "load_balancing_weight", "trainable_mode"}
MIXTRAL_ROPE_THETA = 1e6  # the reference ModelArgs default
_EXPERT_KEY = re.compile(r"^layers\.(\d+)\.feed_forward\.(w1|w2|w3)$")
_GATE_KEY = re.compile(r"^layers\.(\d+)\.feed_forward\.gate\.weight$")


def mixtral_llama_args(args: dict) -> dict:
    """The LLaMA fields of the reference Mixtral ModelArgs, with its rope_theta default."""
    llama_args = {k: v for k, v in args.items() if k not in MIXTRAL_ARGS}
    llama_args.setdefault("rope_theta", MIXTRAL_ROPE_THETA)
    return llama_args


def mixtral_config(args: dict, vocab_size: int, intermediate_size: int, source: Path,
                   load_balancing_default: float = 0.1, **ids):
    """A ``MixtralConfig`` from the reference ModelArgs (``config.json``) and the weights;
    ``load_balancing_default`` is the ModelArgs default (0.1, or 0.01 for _ens5)."""
    from transformers import MixtralConfig

    shape = reference_shape(mixtral_llama_args(args), source)
    moe = args.get("moe", {"num_experts": 8, "num_experts_per_tok": 2})
    if not isinstance(moe, dict):
        raise ConversionError(f"{source}: moe={moe!r}, expected an object")
    experts = _positive_int(moe, "num_experts", source, 8)
    per_token = _positive_int(moe, "num_experts_per_tok", source, 2)
    if per_token > experts:
        raise ConversionError(
            f"{source}: moe.num_experts_per_tok={per_token} exceeds num_experts={experts}"
        )
    stated = args.get("hidden_dim")
    if stated is not None and stated != intermediate_size:
        raise ConversionError(
            f"{source}: hidden_dim={stated!r} but the expert weights hold {intermediate_size} "
            "hidden units per expert"
        )
    return MixtralConfig(
        vocab_size=vocab_size,
        hidden_size=shape.hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads,
        num_key_value_heads=shape.num_key_value_heads,
        # The reference's attention uses dim // n_heads, whatever ModelArgs.head_dim says.
        head_dim=shape.hidden_size // shape.num_attention_heads,
        rms_norm_eps=shape.rms_norm_eps,
        rope_parameters={"rope_type": "default", "rope_theta": shape.rope_theta},
        max_position_embeddings=shape.max_position_embeddings,
        num_local_experts=experts,
        num_experts_per_tok=per_token,
        router_aux_loss_coef=float(args.get("load_balancing_weight", load_balancing_default)),
        sliding_window=None,
        tie_word_embeddings=False,
        **ids,
    )


def mixtral_config_from_shards(args: dict, states: list[dict], shards: list[Path],
                               source: Path, load_balancing_default: float = 0.1, **ids):
    """The ``MixtralConfig`` of reference shards: experts and widths checked against
    ``config.json`` (``source``); the vocabulary and the expert width come from the weights."""
    for needed in ("tok_embeddings.weight", "layers.0.feed_forward.w1"):
        if needed not in states[0]:
            raise ConversionError(f"{shards[0]}: no {PREFIX}{needed} (not a Mixtral checkpoint?)")
    embeddings = [state["tok_embeddings.weight"] for state in states]
    _check_pieces("tok_embeddings.weight", embeddings, 1, shards)
    moe = args.get("moe") if isinstance(args.get("moe"), dict) else {}
    experts = moe.get("num_experts", 8)
    rows = sum(state["layers.0.feed_forward.w1"].shape[0] for state in states)
    if not isinstance(experts, int) or experts < 1 or rows % experts:
        raise ConversionError(
            f"{shards[0]}: {PREFIX}layers.0.feed_forward.w1 has {rows} rows, not a multiple "
            f"of moe.num_experts={experts!r} from {source}"
        )
    config = mixtral_config(args, embeddings[0].shape[0], rows // experts, source,
                            load_balancing_default, **ids)
    width = sum(piece.shape[1] for piece in embeddings)
    if width != config.hidden_size:
        raise ConversionError(
            f"{shards[0]}: token embedding is {width} wide but {source} says "
            f"dim={config.hidden_size}"
        )
    return config


def merge_expert_shards(pieces: list[torch.Tensor], num_experts: int) -> torch.Tensor:
    """``(E * H, dim)`` from the shards' ``(E * H / mp, dim)``: each expert's rows in order."""
    stacked = [piece.view(num_experts, -1, piece.shape[-1]) for piece in pieces]
    return torch.cat(stacked, dim=1)  # (E, H, dim)


def _expert_pieces(key: str, pieces: list[torch.Tensor], experts: int, shards: list[Path]):
    for rank, piece in enumerate(pieces):
        if piece.ndim != 2 or piece.shape[0] % experts or piece.shape[1] != pieces[0].shape[1]:
            raise ConversionError(
                f"{shards[rank]}: {PREFIX}{key} has shape {tuple(piece.shape)}, expected "
                f"(num_experts * hidden / shards, dim) with num_experts={experts}"
            )
    return merge_expert_shards(pieces, experts)


def mixtral_tensors(
    shard_states: list[dict[str, torch.Tensor]],
    llm_keys: list[str],
    config,
    shards: list[Path],
    dtype: torch.dtype | None,
    differing: list[str],
) -> Iterator[tuple[str, torch.Tensor]]:
    """Merge, permute and rename each LLM weight into the Mixtral layout, one at a time."""
    experts = config.num_local_experts
    pending: dict[str, dict[str, torch.Tensor]] = {}
    for key in llm_keys:
        pieces = [state[key] for state in shard_states]
        expert = _EXPERT_KEY.match(key)
        if expert:
            layer, which = expert.groups()
            pending.setdefault(layer, {})[which] = _expert_pieces(key, pieces, experts, shards)
            if len(pending[layer]) < 3:
                continue
            w = pending.pop(layer)
            prefix = f"model.layers.{layer}.mlp.experts."
            fused = {
                prefix + "gate_up_proj": torch.cat([w["w1"], w["w3"]], dim=1),
                prefix + "down_proj": w["w2"].transpose(1, 2),
            }
        elif _GATE_KEY.match(key):
            layer = _GATE_KEY.match(key).group(1)
            fused = {
                f"model.layers.{layer}.mlp.gate.weight": _replicated(key, pieces, shards, differing)
            }
        else:
            name, dim = _hf_name(key)
            if dim is None:
                tensor = _replicated(key, pieces, shards, differing)
            else:
                _check_pieces(key, pieces, dim, shards)
                tensor = torch.cat(pieces, dim=dim)
            if name.endswith(("q_proj.weight", "k_proj.weight")):
                heads = config.num_attention_heads
                if name.endswith("k_proj.weight"):
                    heads = config.num_key_value_heads
                tensor = permute_for_hf_rope(tensor, heads)
            fused = {name: tensor}
        for name, tensor in fused.items():
            yield name, (tensor if dtype is None else tensor.to(dtype)).contiguous()
    if pending:
        layer, found = next(iter(pending.items()))
        raise ConversionError(
            f"{shards[0]}: layer {layer} has experts {sorted(found)}; expected w1, w2 and w3"
        )


def _hf_name(key: str) -> tuple[str, int | None]:
    """The LLaMA rule for every key but the dense feed-forward ones (Mixtral has experts)."""
    if ".feed_forward." in key:
        raise KeyError(key)
    return hf_name(key)


def known_key(key: str) -> bool:
    """Whether ``key`` (without ``llma.``) is an LLM weight of the reference Mixtral."""
    if _EXPERT_KEY.match(key) or _GATE_KEY.match(key):
        return True
    try:
        _hf_name(key)
    except KeyError:
        return False
    return True


def convert_mixtral_llm(
    source: str | Path,
    output: str | Path,
    *,
    dtype: str | torch.dtype | None = None,
    overwrite: bool = False,
    vocab_size: int | None = None,
) -> Path:
    """Write the LLM of a SPHINX-MoE checkpoint as a ``MixtralForCausalLM`` folder.

    ``source`` holds the reference shards and ``config.json``; the vision weights in the
    shards are left out (``convert_accessory`` converts the whole model). ``vocab_size``,
    when given, must match the token embedding (a check against the tokenizer the caller
    will use).
    """
    from transformers import MixtralForCausalLM

    from sphinx_train._house import staged_dir
    from sphinx_train.checkpoint import resolve_dtype

    source = Path(source)
    if not source.is_dir():
        raise ConversionError(f"{source}: not a folder")
    try:
        dtype = resolve_dtype(dtype)
    except ValueError as err:
        raise ConversionError(str(err)) from None
    args = _read_json(source / "config.json")
    shards = find_shards(source)
    states = [_load_shard(path) for path in tqdm(shards, desc="reading shards", unit="shard")]
    for path, state in zip(shards[1:], states[1:], strict=True):
        if set(state) != set(states[0]):
            difference = sorted(set(state) ^ set(states[0]))
            raise ConversionError(
                f"{path}: holds other keys than {shards[0].name}: {difference[:5]}"
            )
    llm_keys = [key for key in states[0] if not _is_vision(key)]
    unknown = [key for key in llm_keys if not known_key(key)]
    if unknown:
        raise ConversionError(f"{shards[0]}: unknown key {PREFIX}{unknown[0]}")
    config = mixtral_config_from_shards(args, states, shards, source / "config.json")
    if vocab_size is not None and vocab_size != config.vocab_size:
        raise ConversionError(f"{shards[0]}: embeds {config.vocab_size} tokens, expected "
                              f"{vocab_size}")
    config.dtype = dtype or states[0]["tok_embeddings.weight"].dtype
    with torch.device("meta"):
        expected = {n: tuple(t.shape) for n, t in MixtralForCausalLM(config).state_dict().items()}
    differing: list[str] = []
    owns = ("config.json", "generation_config.json", "*.safetensors", "*.safetensors.index.json")
    with staged_dir(output, [source], overwrite=overwrite, owns=owns) as stage:
        tensors = mixtral_tensors(states, llm_keys, config, shards, dtype, differing)
        _write_llm(stage, config, tqdm(tensors, desc="LLM", unit="tensor"), expected)
    if differing:
        import warnings

        warnings.warn(
            f"{source}: {len(differing)} replicated weights differ between shards; took "
            f"shard 0's as the reference does: {', '.join(differing[:10])}",
            stacklevel=2,
        )
    return Path(output)
