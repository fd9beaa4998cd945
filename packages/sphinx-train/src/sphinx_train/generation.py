"""Batched decoding with a KV cache, and answers parsed back into image pixels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from transformers import DynamicCache

from sphinx_train.batch import SphinxBatch, SphinxSample, collate
from sphinx_train.conversation import Messages, encode_prompt

if TYPE_CHECKING:
    from sphinx_train.model import SphinxModel

Box = tuple[float, float, float, float]


@dataclass
class GeneratedTokens:
    """Raw decoding result of one sample: the new ids and why decoding ended."""

    token_ids: list[int]
    finish_reason: str  # "eos", "stop" (a stop string appeared) or "length"


@dataclass
class GenerationResult:
    """An answer; boxes and keypoints are in pixels of the original image when there is one
    (else in the [0, 1] frame the text uses)."""

    text: str
    token_ids: list[int]
    finish_reason: str
    layout: object | None = None
    boxes: list[Box] = field(default_factory=list)
    detections: list[tuple[str, list[Box]]] = field(default_factory=list)
    keypoints: dict[str, tuple[float, float]] = field(default_factory=dict)


def sample_next_token(
    logits: torch.Tensor,
    temperature: float = 0.0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Greedy when ``temperature`` is 0, else nucleus sampling over the smallest set of tokens
    whose probability reaches ``top_p`` (the most likely token is always kept)."""
    if temperature <= 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    before = sorted_probs.cumsum(dim=-1) - sorted_probs
    sorted_probs = sorted_probs.masked_fill(before > top_p, 0.0)
    choice = torch.multinomial(sorted_probs, 1, generator=generator)
    return order.gather(-1, choice).squeeze(-1)


def _first_stop(text: str, stop_strings: Sequence[str]) -> int:
    hits = [text.find(stop) for stop in stop_strings if stop and stop in text]
    return min(hits) if hits else -1


@torch.inference_mode()
def generate_tokens(
    model: SphinxModel,
    batch: SphinxBatch,
    *,
    max_new_tokens: int = 512,
    temperature: float = 0.0,
    top_p: float = 1.0,
    stop_strings: Sequence[str] = (),
    seed: int | None = None,
) -> list[GeneratedTokens]:
    """Decode every sample of a prompt batch together: one prefill, then one token per step."""
    tokenizer = model.require_tokenizer()
    device = model.device
    inputs = model.assemble_inputs(batch.to(device), padding_side="left")
    max_new_tokens = _fit_to_context(model, inputs.position_ids, max_new_tokens)
    generator = None
    if seed is not None and temperature > 0:
        generator = torch.Generator(device=device).manual_seed(seed)
    cache = DynamicCache(config=model.llm.config)
    attention_mask = inputs.attention_mask
    positions = inputs.position_ids[:, -1:]
    logits = model.llm(
        inputs_embeds=inputs.inputs_embeds,
        attention_mask=attention_mask,
        position_ids=inputs.position_ids,
        cache=cache,
        use_cache=True,
        logits_to_keep=1,
    ).logits[:, -1]
    batch_size = logits.shape[0]
    generated: list[list[int]] = [[] for _ in range(batch_size)]
    reasons: list[str | None] = [None] * batch_size
    for _ in range(max_new_tokens):
        next_tokens = sample_next_token(logits, temperature, top_p, generator)
        for row, token in enumerate(next_tokens.tolist()):
            if reasons[row] is not None:
                continue
            if token == tokenizer.eos_id:
                reasons[row] = "eos"
                continue
            generated[row].append(token)
            if stop_strings and _first_stop(tokenizer.decode(generated[row]), stop_strings) >= 0:
                reasons[row] = "stop"
        if all(reason is not None for reason in reasons):
            break
        finished = torch.tensor([reason is not None for reason in reasons], device=device)
        next_tokens = next_tokens.masked_fill(finished, tokenizer.pad_id)
        attention_mask = torch.cat([attention_mask, torch.ones_like(positions)], dim=1)
        positions = positions + 1
        logits = model.llm(
            input_ids=next_tokens[:, None],
            attention_mask=attention_mask,
            position_ids=positions,
            cache=cache,
            use_cache=True,
        ).logits[:, -1]
    return [
        GeneratedTokens(ids, reason or "length")
        for ids, reason in zip(generated, reasons, strict=True)
    ]


def _fit_to_context(model: SphinxModel, position_ids: torch.Tensor, max_new_tokens: int) -> int:
    """Cap the answer so no position passes the LLM's context; refuse prompts that fill it."""
    limit = model.llm.config.max_position_embeddings
    prompt_length = int(position_ids.max()) + 1
    if prompt_length >= limit:
        raise ValueError(
            f"the prompt takes {prompt_length} positions (image tokens included) but the LLM "
            f"holds {limit} (max_position_embeddings): use fewer views or a shorter text"
        )
    return min(max_new_tokens, limit - prompt_length)


def _answer(text: str, layout) -> GenerationResult:
    """Parse boxes / named boxes / keypoints from the answer and map them through the layout."""
    from sphinx_tasks import parse_boxes, parse_detections, parse_keypoints

    result = GenerationResult(text=text, token_ids=[], finish_reason="", layout=layout)
    if "[" not in text:
        return result

    def to_pixels(box) -> Box:
        corners = (box.x1, box.y1, box.x2, box.y2)
        mapped = corners if layout is None else layout.box_from_square(corners)
        return tuple(float(value) for value in mapped)

    result.boxes = [to_pixels(box) for box in parse_boxes(text).boxes]
    result.detections = [
        (detection.name, [to_pixels(box) for box in detection.boxes])
        for detection in parse_detections(text).detections
        if detection.name and detection.boxes
    ]
    for name, point in parse_keypoints(text).keypoints.points.items():
        mapped = (
            (point.x, point.y) if layout is None else layout.point_from_square((point.x, point.y))
        )
        result.keypoints[name] = (float(mapped[0]), float(mapped[1]))
    return result


def generate_answers(
    model: SphinxModel,
    conversations: Sequence[str | Messages],
    images: Sequence | None = None,
    *,
    max_new_tokens: int = 512,
    temperature: float = 0.1,
    top_p: float = 0.75,
    seed: int | None = 0,
    stop_strings: Sequence[str] | None = None,
) -> list[GenerationResult]:
    """Prompt with the model's template, decode, cut at the stop string, parse the answer.

    Defaults follow the reference evaluation (temperature 0.1, top-p 0.75, seed 0).
    """
    from sphinx_tasks import get_template
    from sphinx_tiling import get_preset, load_image, tile_batch

    tokenizer = model.require_tokenizer()
    template = get_template(model.config.template)
    images = list(images) if images is not None else [None] * len(conversations)
    if len(images) != len(conversations):
        raise ValueError(f"{len(conversations)} conversations but {len(images)} images")
    samples = [SphinxSample(encode_prompt(tokenizer, c, template)) for c in conversations]
    batch = collate(samples, pad_id=tokenizer.pad_id)
    owners = [row for row, image in enumerate(images) if image is not None]
    layouts: list = [None] * len(images)
    if owners:
        tiled = tile_batch(
            [load_image(images[row]) for row in owners], get_preset(model.config.tiling)
        )
        batch.pixel_values, batch.image_index = tiled.pixel_values, tiled.image_index
        batch.image_owner = torch.tensor(owners, dtype=torch.long)
        for row, layout in zip(owners, tiled.layouts, strict=True):
            layouts[row] = layout
    stops = tuple(template.stop_strings if stop_strings is None else stop_strings)
    decoded = generate_tokens(
        model,
        batch,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        stop_strings=stops,
        seed=seed,
    )
    results = []
    for tokens, layout in zip(decoded, layouts, strict=True):
        text = tokenizer.decode(tokens.token_ids)
        cut = _first_stop(text, stops)
        result = _answer((text if cut < 0 else text[:cut]).strip(), layout)
        result.token_ids, result.finish_reason = tokens.token_ids, tokens.finish_reason
        results.append(result)
    return results
