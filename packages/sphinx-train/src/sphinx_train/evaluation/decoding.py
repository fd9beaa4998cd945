"""Batched decoding whose answers do not depend on the batch: left padding, a KV cache, and
one random generator per sample (seeded from the sample), so sampling at batch 8 draws the
same numbers for each sample as a batch-1 loop does."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

GENERATION_PRESET = "reference-eval"


def _reference_eval() -> dict:
    """sphinx_train.generation's "reference-eval" preset (temperature 0.1, top-p 0.75, cut at
    "###" and rstripped, as the reference's eval scripts) in this module's terms."""
    from sphinx_train.generation import get_generation_preset

    preset = get_generation_preset(GENERATION_PRESET)
    if preset.strip != "rstrip" or len(preset.stop_strings) != 1:
        raise RuntimeError(f"generation preset {GENERATION_PRESET!r} changed its stop rule")
    return {"temperature": preset.temperature, "top_p": preset.top_p,
            "stop": preset.stop_strings[0], "seed": preset.seed or 0}  # fmt: skip


REFERENCE_EVAL = _reference_eval()


@dataclass(frozen=True)
class DecodeSettings:
    max_new_tokens: int
    temperature: float = 0.1
    top_p: float = 0.75
    stop: str = "###"
    seed: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def sample_seed(base: int, key: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{base}:{key}".encode()).digest()[:8], "little") >> 1


def cut_answer(text: str, stop: str) -> str:
    """The reference's cut: up to the first stop string, right-stripped (untouched if absent)."""
    end = text.find(stop) if stop else -1
    return text if end < 0 else text[:end].rstrip()


def decode(
    model, prompts: Sequence[str], images: Sequence, keys: Sequence[str], settings: DecodeSettings
) -> list[str]:
    """Answer rendered prompts (template already applied) about images (or None)."""
    from sphinx_tiling import get_preset, load_image, tile_batch
    from sphinx_train.batch import SphinxSample, collate

    tokenizer = model.require_tokenizer()
    samples = [SphinxSample([tokenizer.bos_id, *tokenizer.encode(p)]) for p in prompts]
    batch = collate(samples, pad_id=tokenizer.pad_id)
    owners = [row for row, image in enumerate(images) if image is not None]
    if owners:
        tiled = tile_batch(
            [load_image(images[row]) for row in owners], get_preset(model.config.tiling)
        )
        batch.pixel_values, batch.image_index = tiled.pixel_values, tiled.image_index
        batch.image_owner = torch.tensor(owners, dtype=torch.long)
    return _decode_batch(model, batch, keys, settings)


@torch.inference_mode()
def _decode_batch(model, batch, keys: Sequence[str], settings: DecodeSettings) -> list[str]:
    from transformers import DynamicCache

    from sphinx_train.generation import sample_next_token

    tokenizer, device = model.require_tokenizer(), model.device
    inputs = model.assemble_inputs(batch.to(device), padding_side="left")
    limit = model.llm.config.max_position_embeddings
    budget = min(settings.max_new_tokens, limit - int(inputs.position_ids.max()) - 1)
    if budget <= 0:
        raise ValueError(f"a prompt fills the LLM's {limit} positions; shorten it")
    generators = [
        torch.Generator(device=device).manual_seed(sample_seed(settings.seed, key)) for key in keys
    ]
    cache = DynamicCache(config=model.llm.config)
    mask, positions = inputs.attention_mask, inputs.position_ids[:, -1:]
    logits = model.llm(inputs_embeds=inputs.inputs_embeds, attention_mask=mask,
                       position_ids=inputs.position_ids, cache=cache, use_cache=True,
                       logits_to_keep=1).logits[:, -1]  # fmt: skip
    rows = len(keys)
    generated: list[list[int]] = [[] for _ in range(rows)]
    done = [False] * rows
    for _ in range(budget):
        chosen = [
            int(
                sample_next_token(
                    logits[row : row + 1], settings.temperature, settings.top_p, generators[row]
                )[0]
            )
            for row in range(rows)
        ]
        for row, token in enumerate(chosen):
            if done[row]:
                continue
            if token == tokenizer.eos_id:
                done[row] = True
                continue
            generated[row].append(token)
            if settings.stop and settings.stop in tokenizer.decode(generated[row]):
                done[row] = True
        if all(done):
            break
        step = torch.tensor([tokenizer.pad_id if d else t for t, d in zip(chosen, done, strict=True)],
                            device=device)  # fmt: skip
        mask = torch.cat([mask, torch.ones_like(positions)], dim=1)
        positions = positions + 1
        logits = model.llm(input_ids=step[:, None], attention_mask=mask, position_ids=positions,
                           cache=cache, use_cache=True).logits[:, -1]  # fmt: skip
    return [cut_answer(tokenizer.decode(ids), settings.stop) for ids in generated]
