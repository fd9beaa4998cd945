"""The composed model: input placement, mixed batches, cached generation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from sphinx_train import SphinxSample, collate, create_model, generate_tokens


@pytest.fixture(scope="module")
def nano():
    torch.manual_seed(0)
    return create_model("sphinx-nano").eval()


@pytest.fixture(scope="module")
def photo():
    from skimage import data

    return Image.fromarray(data.astronaut()).resize((300, 200))


def _views(model, image, tiling):
    return model.image_views(image, tiling)[0]


def test_inputs_are_bos_then_image_tokens_then_text(nano, photo):
    pixels = _views(nano, photo, "sphinx-1k")
    assert pixels.shape == (5, 3, 224, 224)
    text = [nano.tokenizer.bos_id, 40, 41, 42]
    batch = collate(
        [SphinxSample(text, pixel_values=pixels), SphinxSample([nano.tokenizer.bos_id, 7])]
    )
    embed = nano.llm.get_input_embeddings()
    with torch.no_grad():
        image_tokens = nano.encoder(pixels, torch.zeros(5, dtype=torch.long)).embeds[0]
        for side in ("right", "left"):
            inputs = nano.assemble_inputs(batch, padding_side=side)
            n = 5 * nano.encoder.tokens_per_view
            assert image_tokens.shape[0] == n
            assert inputs.inputs_embeds.shape[1] == 1 + n + 3
            first = inputs.inputs_embeds[0]
            torch.testing.assert_close(first[0], embed.weight[text[0]])
            torch.testing.assert_close(first[1 : 1 + n], image_tokens)
            torch.testing.assert_close(first[1 + n :], embed.weight[text[1:]])
            assert inputs.position_ids[0].tolist() == list(range(n + 4))
            # The text-only sample: two real positions, padded on the chosen side.
            mask, positions = inputs.attention_mask[1], inputs.position_ids[1]
            real = torch.nonzero(mask).flatten().tolist()
            assert real == ([0, 1] if side == "right" else [n + 2, n + 3])
            assert positions[real].tolist() == [0, 1]
            torch.testing.assert_close(inputs.inputs_embeds[1, real], embed.weight[[text[0], 7]])


def test_mixed_batch_gives_each_sample_its_own_loss(nano, photo):
    chat = [
        {"role": "user", "content": "Where is the person?"},
        {"role": "assistant", "content": "[0.10,0.20,0.30,0.40]"},
        {"role": "user", "content": "And the rocket?"},
        {"role": "assistant", "content": "There is none."},
    ]
    samples = [
        nano.prepare_sample(chat, photo, tiling="sphinx-1k"),
        nano.prepare_sample(chat[:2], photo.rotate(90, expand=True), tiling="sphinx"),
        nano.prepare_sample(
            [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
        ),
    ]
    assert [s.pixel_values.shape[0] if s.pixel_values is not None else 0 for s in samples] == [
        5,
        1,
        0,
    ]
    with torch.no_grad():
        together = nano.loss(samples)
        alone = [nano.loss([sample]) for sample in samples]
    for index, single in enumerate(alone):
        torch.testing.assert_close(together.sample_loss[index], single.loss, atol=1e-5, rtol=1e-5)
        assert together.sample_tokens[index] == single.sample_tokens[0]
    # The batch loss is the mean over all supervised tokens, as in the reference trainer.
    sums = sum(single.loss * single.sample_tokens[0] for single in alone)
    torch.testing.assert_close(
        together.loss, sums / together.sample_tokens.sum(), atol=1e-5, rtol=1e-5
    )
    # Independent check of the loss itself: cross entropy written out for the text-only sample.
    logits, labels = alone[2].logits[0], alone[2].labels[0]
    picked = [
        torch.logsumexp(logits[t], 0) - logits[t, labels[t + 1]]
        for t in range(len(labels) - 1)
        if labels[t + 1] != -100
    ]
    torch.testing.assert_close(alone[2].loss, torch.stack(picked).mean(), atol=1e-5, rtol=1e-5)


def _greedy_without_cache(model, sample, steps):
    """Recompute the whole sequence for every new token (no KV cache, right padding)."""
    ids = list(sample.input_ids)
    generated = []
    for _ in range(steps):
        with torch.no_grad():
            logits = model(collate([SphinxSample(ids, pixel_values=sample.pixel_values)])).logits
        token = int(logits[0, -1].argmax())
        if token == model.tokenizer.eos_id:
            break
        generated.append(token)
        ids.append(token)
    return generated


def test_cached_batched_generation_equals_uncached_greedy(nano, photo):
    from sphinx_train import encode_prompt

    tokenizer = nano.tokenizer
    samples = [
        SphinxSample(
            encode_prompt(tokenizer, "Describe the image."),
            pixel_values=_views(nano, photo, "sphinx-1k"),
        ),
        SphinxSample(encode_prompt(tokenizer, "Say something long, please, about cats.")),
        SphinxSample(encode_prompt(tokenizer, "What?"), pixel_values=_views(nano, photo, "sphinx")),
    ]
    steps = 6
    expected = [_greedy_without_cache(nano, sample, steps) for sample in samples]
    got = generate_tokens(nano, collate(samples, pad_id=tokenizer.pad_id), max_new_tokens=steps)
    assert [g.token_ids for g in got] == expected
    assert all(g.finish_reason == ("length" if len(g.token_ids) == steps else "eos") for g in got)


def test_generation_stops_at_the_context_limit(photo):
    """sphinx-1k puts 1 + 5 x 291 = 1456 positions before the text; the answer gets the rest."""
    from sphinx_train import encode_prompt

    torch.manual_seed(0)
    model = create_model("sphinx-nano").eval()
    tokenizer = model.tokenizer
    prompt = encode_prompt(tokenizer, "Hi")
    sample = SphinxSample(prompt, pixel_values=_views(model, photo, "sphinx-1k"))
    prompt_length = 5 * 291 + len(prompt)  # the prompt's BOS is the one before the image
    model.llm.config.max_position_embeddings = prompt_length + 3
    model.llm.lm_head.bias = torch.nn.Parameter(torch.zeros(model.llm.config.vocab_size))
    with torch.no_grad():
        model.llm.lm_head.bias[tokenizer.eos_id] = -1e4  # never stop early
    got = generate_tokens(model, collate([sample], pad_id=tokenizer.pad_id), max_new_tokens=50)
    assert len(got[0].token_ids) == 3
    assert got[0].finish_reason == "length"

    model.llm.config.max_position_embeddings = prompt_length
    with pytest.raises(ValueError, match=f"takes {prompt_length} positions"):
        generate_tokens(model, collate([sample], pad_id=tokenizer.pad_id), max_new_tokens=5)


def test_stop_string_ends_the_answer(nano, photo):
    """Steer the model to emit "###" first; under reference-eval it stops there, empty."""
    tokenizer = nano.tokenizer
    separator = tokenizer.encode("###")
    assert len(separator) == 1
    with torch.no_grad():
        bias = torch.zeros(nano.llm.config.vocab_size)
        bias[separator[0]] = 1e4
        original = nano.llm.lm_head.bias
        nano.llm.lm_head.bias = torch.nn.Parameter(bias)
        try:
            result = nano.chat(
                photo, "Hello?", generation="reference-eval", max_new_tokens=5, temperature=0.0
            )
        finally:
            nano.llm.lm_head.bias = original
    assert result.finish_reason == "stop"
    assert result.token_ids == separator
    assert result.text == ""


def test_sampling_top_p_keeps_only_the_nucleus():
    from sphinx_train import sample_next_token

    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    generator = torch.Generator().manual_seed(0)
    drawn = {int(sample_next_token(logits, 1.0, 0.7, generator)) for _ in range(300)}
    # 0.5 alone is below 0.7, 0.5 + 0.3 reaches it: tokens 0 and 1 only.
    assert drawn == {0, 1}
    assert int(sample_next_token(logits, 0.0)) == 0
    counts = np.bincount(
        [int(sample_next_token(logits, 1.0, 1.0, generator)) for _ in range(2000)], minlength=4
    )
    np.testing.assert_allclose(counts / 2000, [0.5, 0.3, 0.15, 0.05], atol=0.04)


def test_answers_with_boxes_are_mapped_to_original_pixels(nano, monkeypatch):
    """A 400x200 image is padded to a 400x400 square, 100 px above and below."""
    from sphinx_train import generation

    image = Image.new("RGB", (400, 200), (10, 200, 30))
    text = "<p>cat</p> [0.25,0.50,0.75,0.75] <p>nose</p> [0.50,0.50]\n###"
    ids = nano.tokenizer.encode(text)

    def fake_tokens(model, batch, **options):
        return [generation.GeneratedTokens(ids, "stop")]

    monkeypatch.setattr(generation, "generate_tokens", fake_tokens)
    result = nano.chat(image, "Detect all objects shown in the image.")
    assert result.text == "<p>cat</p> [0.25,0.50,0.75,0.75] <p>nose</p> [0.50,0.50]"
    assert result.boxes == [pytest.approx((100.0, 100.0, 300.0, 200.0))]
    assert result.detections == [("cat", [pytest.approx((100.0, 100.0, 300.0, 200.0))])]
    assert result.keypoints["nose"] == pytest.approx((200.0, 100.0))
