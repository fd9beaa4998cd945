"""The SPHINX model: a causal LM whose input is [BOS | image tokens | text tokens]."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from sphinx_train.batch import SphinxBatch, SphinxSample, collate
from sphinx_train.config import SphinxConfig
from sphinx_train.conversation import IGNORE_INDEX, Messages, encode_conversation
from sphinx_train.tokenizer import TextTokenizer

if TYPE_CHECKING:
    from sphinx_train.generation import GenerationResult


@dataclass
class AssembledInputs:
    """What goes into the LLM: embeddings, 2-D attention mask, position ids, aligned labels."""

    inputs_embeds: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    labels: torch.Tensor | None
    image_tokens: torch.Tensor


@dataclass
class SphinxOutput:
    """Logits over the assembled sequence and, with labels, the losses.

    ``loss`` is the mean over all supervised tokens of the batch (as the reference trainer);
    ``sample_loss`` is each sample's own mean, ``sample_tokens`` its supervised token count,
    ``sample_loss_sum`` its summed NLL (what a global token mean over micro-batches adds up).
    """

    logits: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor | None = None
    loss: torch.Tensor | None = None
    sample_loss: torch.Tensor | None = None
    sample_tokens: torch.Tensor | None = None
    sample_loss_sum: torch.Tensor | None = None
    # Mixtral LLMs in training: the reference's load-balancing loss (`load_balancing_loss`)
    load_balancing_loss: torch.Tensor | None = None


def causal_lm_losses(
    logits: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(batch mean, per-sample mean, per-sample count, per-sample sum) of next-token
    cross entropy."""
    shifted_labels = labels[:, 1:]
    token_loss = F.cross_entropy(
        logits[:, :-1].float().transpose(1, 2),
        shifted_labels,
        ignore_index=IGNORE_INDEX,
        reduction="none",
    )
    counts = (shifted_labels != IGNORE_INDEX).sum(dim=1)
    sums = token_loss.sum(dim=1)
    sample_loss = sums / counts.clamp(min=1)
    loss = sums.sum() / counts.sum().clamp(min=1)
    return loss, sample_loss, counts, sums


def load_balancing_loss(router_logits, attention_mask: torch.Tensor, experts_per_token: int):
    """SPHINX-MoE's auxiliary loss (the reference's ``MoE._load_balancing_loss``), the mean
    over layers of ``E / (n * k) * sum_e tokens_e * mean_prob_e``: ``tokens_e`` the number of
    top-k slots routed to expert e, ``mean_prob_e`` its mean softmax probability, over the
    batch's n real positions (the reference also counts its padding to ``max_words``, which
    makes its value depend on that padding). 1.0 when routing is perfectly balanced."""
    real = attention_mask.flatten().bool()
    losses = []
    for logits in router_logits:
        probs = logits[real].float().softmax(dim=-1)
        n, experts = probs.shape
        chosen = probs.topk(experts_per_token, dim=-1).indices.flatten()
        counts = torch.bincount(chosen, minlength=experts).to(probs)
        losses.append(experts / (n * experts_per_token) * torch.dot(counts, probs.mean(dim=0)))
    return torch.stack(losses).mean()


class SphinxModel(nn.Module):
    """An LLM (any ``LlamaForCausalLM``-compatible model) plus a mixed visual encoder.

    Each image contributes its encoder tokens right after the BOS token; text-only samples
    have none. The tiling preset decides how a raw image becomes views at inference.
    """

    def __init__(
        self,
        llm: nn.Module,
        encoder: nn.Module | None = None,
        tokenizer: TextTokenizer | None = None,
        config: SphinxConfig | None = None,
        processor=None,
    ):
        from sphinx_train.processor import SphinxProcessor

        super().__init__()
        self.llm = llm
        self.encoder = encoder
        self.config = config or SphinxConfig(encoder=None if encoder is None else "custom")
        if processor is None:
            processor = SphinxProcessor(self.config.tiling, self.config.template, tokenizer)
        elif tokenizer is not None:
            processor.tokenizer = tokenizer
        self.processor = processor
        self.config.tiling = processor.tiling.name
        self.config.template = processor.template.name
        if encoder is not None and self.config.encoder_config is None:
            # Record the architecture so that a saved model can be rebuilt.
            self.config.encoder_config = encoder.config.to_dict()
        if encoder is not None and encoder.llm_dim != llm.config.hidden_size:
            raise ValueError(
                f"encoder projects to {encoder.llm_dim} channels but the LLM is "
                f"{llm.config.hidden_size} wide"
            )

    @property
    def device(self) -> torch.device:
        return self.llm.get_input_embeddings().weight.device

    @property
    def tokenizer(self) -> TextTokenizer | None:
        return self.processor.tokenizer

    @tokenizer.setter
    def tokenizer(self, tokenizer: TextTokenizer | None) -> None:
        self.processor.tokenizer = tokenizer

    @property
    def tiling(self):
        """The processor's tiling preset (in full, as saved with the model)."""
        return self.processor.tiling

    def require_tokenizer(self) -> TextTokenizer:
        return self.processor.require_tokenizer()

    # -- data ---------------------------------------------------------------------------------

    def image_views(self, image, tiling=None) -> tuple[torch.Tensor, object]:
        """Views (n_views, 3, S, S) and the coordinate layout of one image under a tiling preset."""
        from sphinx_tiling import get_preset, tile_batch

        preset = self.processor.tiling if tiling is None else get_preset(tiling)
        batch = tile_batch([self.processor.load_image(image)], preset)
        return batch.pixel_values, batch.layouts[0]

    def prepare_sample(
        self, conversation: str | Messages, image=None, *, tiling=None
    ) -> SphinxSample:
        """A training sample: ids with supervised labels, plus the image's views if any."""
        encoded = encode_conversation(
            self.require_tokenizer(), conversation, self.processor.template
        )
        pixels = None if image is None else self.image_views(image, tiling)[0]
        return SphinxSample(encoded.input_ids, encoded.labels, pixels)

    # -- model --------------------------------------------------------------------------------

    def assemble_inputs(self, batch: SphinxBatch, padding_side: str = "right",
                        features=None) -> AssembledInputs:
        """Place [BOS | image tokens | text after BOS] per sample and pad to one length.

        Right padding suits training, left padding generation (all prompts end together).
        ``features`` (`sphinx_encoders.ViewFeatures` of the batch's views, e.g. from a
        `FeatureCache`) replaces the frozen backbones: only the projections run.
        """
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        text_embeds = self.llm.get_input_embeddings()(batch.input_ids)
        batch_size = text_embeds.shape[0]
        text_lengths = batch.text_mask.sum(dim=1).tolist()
        image_counts = [0] * batch_size
        image_embeds, image_of_sample = None, {}
        if batch.pixel_values is not None:
            if self.encoder is None:
                raise ValueError("the batch has images but this model has no visual encoder")
            encoder_dtype = next(self.encoder.parameters(), text_embeds).dtype
            if features is not None:
                encoded = self.encoder.from_features(features, batch.image_index)
            else:
                encoded = self.encoder(batch.pixel_values.to(encoder_dtype), batch.image_index)
            image_embeds = encoded.embeds.to(text_embeds.dtype)
            if self.config.image_token_scale != 1.0:
                image_embeds = image_embeds * self.config.image_token_scale
            for image, (owner, count) in enumerate(
                zip(batch.image_owner.tolist(), encoded.mask.sum(dim=1).tolist(), strict=True)
            ):
                if owner in image_of_sample:
                    raise ValueError(f"sample {owner} has more than one image")
                image_of_sample[owner] = image
                image_counts[owner] = count
        totals = [length + count for length, count in zip(text_lengths, image_counts, strict=True)]
        width = max(totals)
        embeds = text_embeds.new_zeros(batch_size, width, text_embeds.shape[-1])
        mask = torch.zeros(batch_size, width, dtype=torch.long, device=text_embeds.device)
        labels = None
        if batch.labels is not None:
            labels = torch.full_like(mask, IGNORE_INDEX)
        for row in range(batch_size):
            start = width - totals[row] if padding_side == "left" else 0
            length, count = text_lengths[row], image_counts[row]
            text_start = start + 1 + count
            embeds[row, start] = text_embeds[row, 0]
            if count:
                embeds[row, start + 1 : text_start] = image_embeds[image_of_sample[row], :count]
            embeds[row, text_start : text_start + length - 1] = text_embeds[row, 1:length]
            mask[row, start : start + totals[row]] = 1
            if labels is not None:
                labels[row, start] = batch.labels[row, 0]
                labels[row, text_start : text_start + length - 1] = batch.labels[row, 1:length]
        position_ids = (mask.cumsum(dim=1) - 1).clamp(min=0)
        image_tokens = torch.tensor(image_counts, device=text_embeds.device)
        return AssembledInputs(embeds, mask, position_ids, labels, image_tokens)

    def forward(self, batch: SphinxBatch, padding_side: str = "right",
                features=None) -> SphinxOutput:
        """Logits (and losses, with labels); ``features`` as in `assemble_inputs`."""
        inputs = self.assemble_inputs(batch.to(self.device), padding_side, features)
        routed = (self.training and inputs.labels is not None
                  and getattr(self.llm.config, "num_local_experts", 0) > 0)
        out = self.llm(
            inputs_embeds=inputs.inputs_embeds,
            attention_mask=inputs.attention_mask,
            position_ids=inputs.position_ids,
            use_cache=False,
            **({"output_router_logits": True} if routed else {}),
        )
        output = SphinxOutput(out.logits, inputs.attention_mask, inputs.labels)
        if inputs.labels is not None:
            (output.loss, output.sample_loss, output.sample_tokens,
             output.sample_loss_sum) = causal_lm_losses(out.logits, inputs.labels)
        if routed:
            output.load_balancing_loss = load_balancing_loss(
                out.router_logits, inputs.attention_mask, self.llm.config.num_experts_per_tok)
        return output

    def loss(self, samples: Sequence[SphinxSample]) -> SphinxOutput:
        """Collate and run training samples (convenience for small jobs and tests)."""
        pad_id = self.tokenizer.pad_id if self.tokenizer is not None else 0
        return self(collate(samples, pad_id=pad_id))

    # -- inference ----------------------------------------------------------------------------

    def generate(
        self,
        conversations: Sequence[str | Messages],
        images: Sequence | None = None,
        **generation,
    ) -> list[GenerationResult]:
        """Answer a batch of conversations (left-padded, KV cache); ``images`` may hold None."""
        from sphinx_train.generation import generate_answers

        return generate_answers(self, conversations, images, **generation)

    def chat(self, image, conversation: str | Messages, **generation) -> GenerationResult:
        """Answer one question (or continue a conversation) about one image (or None).

        ``generation="reference-chat"`` (the default) or ``"reference-eval"``, plus overrides.
        """
        from sphinx_train.processor import check_conversation

        check_conversation(conversation)
        return self.generate([conversation], [image], **generation)[0]

    # -- checkpoints --------------------------------------------------------------------------

    def save_pretrained(self, directory, *, overwrite: bool = False):
        """Write the model folder; an existing one is replaced only with ``overwrite``."""
        from sphinx_train.checkpoint import save_model

        return save_model(self, directory, overwrite=overwrite)

    @classmethod
    def from_pretrained(cls, directory, **options) -> SphinxModel:
        from sphinx_train.checkpoint import load_model

        return load_model(directory, **options)
