"""Batched decoding with a KV cache, and answers parsed back into image pixels."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from transformers import DynamicCache

from sphinx_train._house import Registry
from sphinx_train.batch import SphinxBatch
from sphinx_train.conversation import Messages

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


def check_sampling(max_new_tokens: object, temperature: object, top_p: object) -> None:
    """Refuse sampling settings that would end in a torch error or an empty answer."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens={max_new_tokens!r}: expected an integer >= 1")
    if not _is_real(temperature) or not math.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature={temperature!r}: expected a finite number >= 0 (0 = greedy)")
    if not _is_real(top_p) or not 0 < top_p <= 1:
        raise ValueError(f"top_p={top_p!r}: expected a number in (0, 1]")


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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
    on_token: Callable[[int, list[int]], None] | None = None,
) -> list[GeneratedTokens]:
    """Decode every sample of a prompt batch together: one prefill, then one token per step.

    ``on_token(row, ids)`` is called with each sample's answer so far (for streaming).
    """
    check_sampling(max_new_tokens, temperature, top_p)
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
            if on_token is not None:
                on_token(row, generated[row])
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



STRIP_MODES = ("none", "rstrip", "strip")
TRUNCATIONS = ("reference", "error")


@dataclass(frozen=True)
class GenerationPreset:
    """How an answer is sampled, where it stops, how it is trimmed and how long prompts fit.

    ``truncation="reference"`` keeps the last ``context - image tokens - max_new_tokens``
    prompt tokens, as the reference does (BOS and the system text go first); ``"error"``
    refuses a prompt that fills the context and shortens the answer to what fits.
    """

    name: str
    max_new_tokens: int = 512
    temperature: float = 0.1
    top_p: float = 0.5
    seed: int | None = 0
    stop_strings: tuple[str, ...] = ("\n###",)
    strip: str = "none"
    truncation: str = "reference"
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        check_sampling(self.max_new_tokens, self.temperature, self.top_p)
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ValueError(f"seed={self.seed!r}: expected an integer or None")
        stops = (self.stop_strings,) if isinstance(self.stop_strings, str) else self.stop_strings
        stops = tuple(stops)
        if not all(isinstance(stop, str) and stop for stop in stops):
            raise ValueError(f"stop_strings={self.stop_strings!r}: expected non-empty strings")
        object.__setattr__(self, "stop_strings", stops)
        if self.strip not in STRIP_MODES:
            raise ValueError(f"strip={self.strip!r}: expected one of {STRIP_MODES}")
        if self.truncation not in TRUNCATIONS:
            raise ValueError(f"truncation={self.truncation!r}: expected one of {TRUNCATIONS}")

    def replace(self, **changes) -> GenerationPreset:
        known = {item.name for item in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown generation options {unknown}; expected some of {sorted(known)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["stop_strings"] = list(self.stop_strings)
        return data

    @classmethod
    def from_dict(cls, data: dict, source: str = "generation") -> GenerationPreset:
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected an object of generation settings")
        known = {item.name for item in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{source}: unknown keys {unknown}; expected some of {sorted(known)}")
        try:
            return cls(**data)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{source}: {err}") from None

    def trim(self, text: str) -> str:
        """Cut at the first stop string, then strip as the preset says."""
        cut = _first_stop(text, self.stop_strings)
        text = text if cut < 0 else text[:cut]
        return {"none": text, "rstrip": text.rstrip(), "strip": text.strip()}[self.strip]


_GENERATION_PRESETS: Registry[GenerationPreset] = Registry("generation preset")


def register_generation_preset(
    name: str, preset: GenerationPreset, *, overwrite: bool = False
) -> GenerationPreset:
    return _GENERATION_PRESETS.register(name, preset, overwrite=overwrite)


def list_generation_presets(pattern: str | None = None) -> list[str]:
    return _GENERATION_PRESETS.names(pattern)


def get_generation_preset(name: str | GenerationPreset) -> GenerationPreset:
    if isinstance(name, GenerationPreset):
        return name
    return _GENERATION_PRESETS.get(name)


# SPHINXModel.generate_response: stop at "\n###", temperature 0.1, top-p 0.5, 512, seed 0.
register_generation_preset(
    "reference-chat",
    GenerationPreset("reference-chat", description="the reference chat (generate_response)"),
)
# accessory/eval_mm: stop at "###" and rstrip, temperature 0.1, top-p 0.75; each benchmark
# sets its own max_gen_len (10 for short VQA), so evaluation tasks override max_new_tokens.
register_generation_preset(
    "reference-eval",
    GenerationPreset(
        "reference-eval",
        top_p=0.75,
        stop_strings=("###",),
        strip="rstrip",
        description="the reference evaluation scripts",
    ),
)
DEFAULT_GENERATION = "reference-chat"


def truncate_prompt(
    input_ids: list[int], image_tokens: int, max_new_tokens: int, context: int
) -> list[int]:
    """The reference's left cut: keep the last ``context - image_tokens - max_new_tokens`` ids."""
    keep = context - image_tokens - max_new_tokens
    if keep < 1:
        raise ValueError(
            f"{image_tokens} image tokens and max_new_tokens={max_new_tokens} leave no room for "
            f"the prompt in a context of {context}: use fewer views or fewer new tokens"
        )
    return input_ids[-keep:]


class TextStreamer:
    """Print one sample's answer as it is decoded, holding back text that may start a stop."""

    def __init__(self, tokenizer, preset: GenerationPreset, write: Callable[[str], None]):
        self.tokenizer, self.preset, self.write = tokenizer, preset, write
        self.shown = 0
        self.stopped = False

    def __call__(self, row: int, ids: list[int]) -> None:
        if row != 0 or self.stopped:
            return
        text = self.tokenizer.decode(ids)
        cut = _first_stop(text, self.preset.stop_strings)
        if cut >= 0:
            self.stopped = True
            safe = cut
        else:
            held = max((len(stop) - 1 for stop in self.preset.stop_strings), default=0)
            safe = max(self.shown, len(text) - held)
            if text.endswith("\ufffd"):  # an unfinished multi-byte character
                safe = min(safe, len(text) - 1)
        if self.preset.strip != "none":  # trailing blanks may be stripped at the end
            safe = max(self.shown, len(text[:safe].rstrip()))
        if safe > self.shown:
            self.write(text[self.shown : safe])
            self.shown = safe

    def finish(self, answer: str) -> None:
        """Write what was held back of the final (trimmed) answer."""
        if len(answer) > self.shown:
            self.write(answer[self.shown :])
        self.shown = len(answer)


def generate_answers(
    model: SphinxModel,
    conversations: Sequence[str | Messages],
    images: Sequence | None = None,
    *,
    generation: str | GenerationPreset | None = None,
    on_token: Callable[[int, list[int]], None] | None = None,
    **overrides,
) -> list[GenerationResult]:
    """Prompt with the model's template, decode, cut at the stop string, parse the answer.

    ``generation`` is a preset name (``"reference-chat"``, ``"reference-eval"``) or a
    :class:`GenerationPreset`; the default is the model processor's. Keywords
    (``max_new_tokens``, ``temperature``, ``top_p``, ``seed``, ``stop_strings``, ``strip``,
    ``truncation``) override single fields.
    """
    processor = model.processor
    preset = get_generation_preset(generation or processor.generation)
    if overrides:
        preset = preset.replace(**overrides)
    if isinstance(conversations, (str, bytes)) or conversations is None:
        raise ValueError("conversations: expected a list of questions or message lists")
    conversations = list(conversations)
    images = list(images) if images is not None else [None] * len(conversations)
    if len(images) != len(conversations):
        raise ValueError(f"{len(conversations)} conversations but {len(images)} images")
    batch = processor(images, conversations)
    if preset.truncation == "reference":
        _truncate_batch(model, batch, preset.max_new_tokens)
    decoded = generate_tokens(
        model,
        batch,
        max_new_tokens=preset.max_new_tokens,
        temperature=preset.temperature,
        top_p=preset.top_p,
        stop_strings=preset.stop_strings,
        seed=preset.seed,
        on_token=on_token,
    )
    results = []
    for tokens, layout in zip(decoded, batch.layouts, strict=True):
        result = _answer(preset.trim(processor.tokenizer.decode(tokens.token_ids)), layout)
        result.token_ids, result.finish_reason = tokens.token_ids, tokens.finish_reason
        results.append(result)
    return results


def _truncate_batch(model: SphinxModel, batch: SphinxBatch, max_new_tokens: int) -> None:
    """Cut each prompt from the left as the reference does (its image tokens counted)."""
    context = model.llm.config.max_position_embeddings
    per_view = model.encoder.tokens_per_view if model.encoder is not None else 0
    views = [0] * batch.input_ids.shape[0]
    if batch.image_index is not None:
        for image in batch.image_index.tolist():
            views[int(batch.image_owner[image])] += 1
    lengths = batch.text_mask.sum(dim=1).tolist()
    kept = [
        truncate_prompt(ids[:length], count * per_view, max_new_tokens, context)
        for ids, length, count in zip(batch.input_ids.tolist(), lengths, views, strict=True)
    ]
    if all(len(ids) == length for ids, length in zip(kept, lengths, strict=True)):
        return
    pad = model.processor.tokenizer.pad_id
    width = max(len(ids) for ids in kept)
    batch.input_ids = torch.full((len(kept), width), pad, dtype=torch.long)
    batch.text_mask = torch.zeros((len(kept), width), dtype=torch.bool)
    for row, ids in enumerate(kept):
        batch.input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        batch.text_mask[row, : len(ids)] = True
