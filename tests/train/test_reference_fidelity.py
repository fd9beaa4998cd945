"""Reference behaviours (LLaMA2-Accessory SPHINX/sphinx.py, accessory/model/meta.py,
accessory/eval_mm/inference_image_sphinx.py) transcribed here as the expectations."""

from __future__ import annotations

import io

import pytest
import torch
from PIL import Image

from sphinx_train import create_model, generation

SYSTEM = (
    "A chat between a curious human and an artificial intelligence assistant. The assistant "
    "gives helpful, detailed, and polite answers to the human's questions."
)


def reference_prompt(turns):
    """conversation.get_prompt() of the reference's default conversation."""
    text = SYSTEM + "\n\n" + "###"
    for role, message in turns:
        text += f" {role}: {message}\n###" if message is not None else f" {role}:"
    return text


@pytest.fixture(scope="module")
def nano():
    torch.manual_seed(3)
    return create_model("sphinx-nano").eval()


@pytest.fixture
def answer_with(monkeypatch):
    """Make decoding return a fixed text; record the prompt batches it was given."""
    seen = []

    def install(model, text):
        ids = model.tokenizer.encode(text)

        def fake(model, batch, **options):
            seen.append((batch, options))
            return [generation.GeneratedTokens(ids, "stop") for _ in range(len(batch.input_ids))]

        monkeypatch.setattr(generation, "generate_tokens", fake)
        return seen

    return install


def test_reference_chat_stops_at_newline_hashes_and_eval_at_hashes(nano, answer_with):
    # generate_response: additional_stop_symbols=["\n###"], nothing stripped.
    # eval_mm: answer[:answer.find("###")].rstrip().
    seen = answer_with(nano, "Yes ### no\n### Human: more")
    assert nano.chat(None, "Q?").text == "Yes ### no"
    assert nano.chat(None, "Q?", generation="reference-eval").text == "Yes"
    chat_options, eval_options = seen[0][1], seen[1][1]
    assert (chat_options["temperature"], chat_options["top_p"]) == (0.1, 0.5)
    assert (chat_options["max_new_tokens"], chat_options["seed"]) == (512, 0)
    assert (eval_options["temperature"], eval_options["top_p"]) == (0.1, 0.75)


def test_reference_truncation_keeps_the_last_tokens(nano, answer_with):
    """meta.generate: max_seq_len -= image_words; prompt = tokens[-(max_seq_len - max_gen_len):]
    (BOS and the system text are the first to go)."""
    seen = answer_with(nano, "ok")
    tokenizer = nano.tokenizer
    question = "Describe the image in detail. " * 80
    full = [
        tokenizer.bos_id,
        *tokenizer.encode(reference_prompt([("Human", question), ("Assistant", None)])),
    ]
    image = Image.new("RGB", (64, 48), (9, 99, 199))
    image_words = nano.encoder.tokens_per_view  # sphinx tiling: one view
    context, max_gen_len = image_words + 40 + 7, 7
    nano.llm.config.max_position_embeddings = context
    try:
        nano.chat(image, question, max_new_tokens=max_gen_len)
        nano.chat(None, question, max_new_tokens=max_gen_len)
        nano.chat(image, question, max_new_tokens=max_gen_len, truncation="error")
    finally:
        nano.llm.config.max_position_embeddings = 4096
    with_image, text_only, untouched = seen[0][0], seen[1][0], seen[2][0]
    assert untouched.input_ids[0].tolist() == full  # "error" leaves the prompt to the check
    assert with_image.input_ids[0].tolist() == full[-(context - image_words - max_gen_len) :]
    assert text_only.input_ids[0].tolist() == full[-(context - max_gen_len) :]
    assert len(full) > context - max_gen_len  # the cut happened


def test_image_marker_in_a_question_is_kept_at_inference(nano, answer_with):
    seen = answer_with(nano, "ok")
    nano.chat(None, "What is <image> here?")
    expected = reference_prompt([("Human", "What is <image> here?"), ("Assistant", None)])
    ids = seen[0][0].input_ids[0].tolist()
    assert nano.tokenizer.decode(ids[1:]) == expected


def _png(image):
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_reference_decoding_only_converts_to_rgb(nano):
    """SPHINXModel.generate_response: image.convert("RGB") - alpha dropped, no EXIF turn."""
    from sphinx_train import SphinxProcessor

    rgba = Image.new("RGBA", (8, 4), (200, 10, 10, 0))
    reference = SphinxProcessor(nano.tiling, nano.processor.template, decoding="reference")
    corrected = SphinxProcessor(nano.tiling, nano.processor.template, decoding="corrected")
    assert reference.load_image(_png(rgba)).getpixel((0, 0)) == (200, 10, 10)
    assert corrected.load_image(_png(rgba)).getpixel((0, 0)) == nano.tiling.fill
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    buffer = io.BytesIO()
    Image.new("RGB", (8, 4), (1, 2, 3)).save(buffer, format="JPEG", exif=exif)
    assert reference.load_image(buffer.getvalue()).size == (8, 4)
    assert corrected.load_image(buffer.getvalue()).size == (4, 8)
    assert nano.processor.decoding == "reference"


def _reference_tiny_1k_dinov2_views(canvas: torch.Tensor) -> torch.Tensor:
    """llama_ens5_light.encode_image: DINOv2's five 224 views come from the 1024 canvas,
    the global one by a float16 bicubic resize 1024 -> 224, the crops as quarters of a
    float16 bicubic resize 1024 -> 448 (not from the 512 views ConvNeXt gets)."""
    import torch.nn.functional as F

    small = F.interpolate(canvas.half(), size=(224, 224), mode="bicubic").float()
    mid = F.interpolate(canvas.half(), size=(448, 448), mode="bicubic").float()
    crops = [mid[..., :224, :224], mid[..., :224, 224:], mid[..., 224:, :224], mid[..., 224:, 224:]]
    return torch.cat([small, *crops])


def test_tiny_1k_dinov2_views_come_from_the_1024_canvas():
    from sphinx_encoders import create_encoder
    from sphinx_tiling import tile_tensor

    image = Image.effect_noise((300, 200), 80).convert("RGB")
    views = tile_tensor(image, "sphinx-light-1k")  # global 512 + four 512 crops
    # The crops are slices of the normalised 1024 canvas: put them back together.
    canvas = torch.cat(
        [torch.cat([views[1], views[2]], dim=-1), torch.cat([views[3], views[4]], dim=-1)], dim=-2
    )[None]
    expected = _reference_tiny_1k_dinov2_views(canvas)
    encoder = create_encoder("sphinx-light-1k-tiny", llm_dim=8)
    dinov2 = next(b for b in encoder.patch_encoders.values() if hasattr(b, "resize"))
    given = dinov2.resize(views, torch.zeros(5, dtype=torch.long))  # the five views of image 0
    assert given.shape == expected.shape
    assert (given - expected).abs().max() < 1e-3


def test_tiny_1k_preset_builds_the_canvas_views_and_tiny_does_not():
    from sphinx_encoders import get_encoder_config
    from sphinx_train import get_model_preset
    from sphinx_train.accessory import LLAMA_TYPE_TO_ENCODER

    def dinov2(preset):
        config = get_encoder_config(get_model_preset(preset).encoder)
        return next(c for c in config.patch_encoders if c.kind == "dinov2")

    assert get_model_preset("sphinx-tiny-1k").tiling == "sphinx-light-1k"
    assert dinov2("sphinx-tiny-1k").views_from_canvas
    assert not dinov2("sphinx-tiny").views_from_canvas
    converted = get_encoder_config(LLAMA_TYPE_TO_ENCODER["llama_ens5_light"])
    assert next(c for c in converted.patch_encoders if c.kind == "dinov2").views_from_canvas
