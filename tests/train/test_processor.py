"""SphinxProcessor: saved with the model in full, restored in a new process, callable alone."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from PIL import Image

from sphinx_train import SphinxModel, SphinxProcessor, SphinxSample, collate, create_model
from sphinx_train.cli import main


@pytest.fixture(scope="module")
def custom(tmp_path_factory):
    from sphinx_tiling import Preset, register_preset

    preset = Preset("test-wide-1x3", rows=1, cols=3, side=224, fill=(1, 2, 3))
    register_preset(preset, overwrite=True)
    torch.manual_seed(11)
    model = create_model("sphinx-nano", tiling="test-wide-1x3", generation="reference-eval")
    folder = tmp_path_factory.mktemp("proc") / "model"
    model.save_pretrained(folder)
    return model, folder, preset


def test_processor_json_holds_the_preset_and_template_in_full(custom):
    _, folder, preset = custom
    saved = json.loads((folder / "processor.json").read_text())
    assert saved["tiling"] == preset.to_dict()
    assert saved["template"]["name"] == "sphinx" and saved["template"]["stop_strings"] == ["###"]
    assert saved["decoding"] == "corrected"  # a tiling Preset's default decoding
    assert saved["generation"]["name"] == "reference-eval"
    assert saved["generation"]["top_p"] == 0.75


def test_custom_tiling_loads_in_a_new_process(custom):
    _, folder, preset = custom
    code = (
        "import sys, json\n"
        "from sphinx_train import SphinxModel\n"
        f"model = SphinxModel.from_pretrained({str(folder)!r})\n"
        "print(json.dumps(model.tiling.to_dict()))\n"
        "print(model.processor.generation.name)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    tiling, generation = result.stdout.strip().splitlines()[-2:]
    assert json.loads(tiling) == preset.to_dict()
    assert generation == "reference-eval"


def test_processor_alone_gives_the_model_inputs(custom):
    _, folder, _ = custom
    processor = SphinxProcessor.from_pretrained(folder)
    image = Image.new("RGB", (300, 100), (40, 50, 60))
    batch = processor([image, None], ["What is it?", "Hi"])
    # A 1x3 grid of 224 px tiles plus the global view: 4 views for the image.
    assert batch.pixel_values.shape == (4, 3, 224, 224)
    assert batch.image_owner.tolist() == [0]
    prompt = processor.template.render(
        [{"role": "user", "content": "What is it?"}], add_generation_prompt=True
    ).text
    ids = [processor.tokenizer.bos_id, *processor.tokenizer.encode(prompt)]
    assert batch.input_ids[0, : len(ids)].tolist() == ids
    loaded = SphinxModel.from_pretrained(folder)
    by_hand = collate(
        [SphinxSample(ids, pixel_values=loaded.image_views(image)[0]),
         SphinxSample([processor.tokenizer.bos_id, *processor.tokenizer.encode(
             processor.template.render([{"role": "user", "content": "Hi"}],
                                       add_generation_prompt=True).text)])],
        pad_id=processor.tokenizer.pad_id,
    )  # fmt: skip
    with torch.no_grad():
        assert torch.equal(loaded(batch).logits, loaded(by_hand).logits)
    single = processor(image, "What is it?")
    assert single.input_ids[0].tolist() == ids


def test_bad_processor_file_is_one_line(custom, tmp_path):
    import shutil

    _, folder, _ = custom
    copy = shutil.copytree(folder, tmp_path / "m")
    data = json.loads((copy / "processor.json").read_text())
    data["tiling"]["rows"] = 0
    (copy / "processor.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"processor\.json: tiling: .*rows=0"):
        SphinxModel.from_pretrained(copy)


def _box_answer(monkeypatch, text="<p>box</p> [0.25,0.25,0.75,0.75]\n###"):
    from sphinx_train import generation

    seen = []

    def fake(model, batch, **options):
        seen.append(batch)
        ids = model.tokenizer.encode(text)
        if options.get("on_token"):
            for end in range(1, len(ids) + 1):
                options["on_token"](0, ids[:end])
        return [generation.GeneratedTokens(ids, "stop")]

    monkeypatch.setattr(generation, "generate_tokens", fake)
    return seen


def test_chat_writes_no_boxes_image_unless_asked(custom, tmp_path, monkeypatch, capsys):
    _, folder, _ = custom
    image = tmp_path / "in" / "scene.png"
    image.parent.mkdir()
    Image.new("RGB", (200, 100), (255, 255, 255)).save(image)
    _box_answer(monkeypatch)
    assert main(["chat", "--model", str(folder), "--image", str(image), "Where?"]) == 0
    assert sorted(p.name for p in image.parent.iterdir()) == ["scene.png"]
    assert capsys.readouterr().out == "<p>box</p> [0.25,0.25,0.75,0.75]\n"
    assert main(["chat", "--model", str(folder), "--draw", str(image), "Where?"]) == 1
    assert "--draw needs --image" in capsys.readouterr().err
    assert main(["chat", "--model", str(folder), "--image", str(image), "--draw", str(image),
                 "Where?"]) == 1  # fmt: skip
    assert "would replace the input" in capsys.readouterr().err


def test_interactive_session_carries_the_history(custom, monkeypatch, capsys):
    import io

    model, folder, _ = custom
    seen = _box_answer(monkeypatch, "A cat.")
    monkeypatch.setattr(sys, "stdin", io.StringIO("What is it?\nAnd its colour?\n"))
    assert main(["chat", "--model", str(folder), "--interactive"]) == 0
    assert capsys.readouterr().out.count("A cat.\n") == 2
    system = (
        "A chat between a curious human and an artificial intelligence assistant. The "
        "assistant gives helpful, detailed, and polite answers to the human's questions."
    )
    expected = (system + "\n\n###" + " Human: What is it?\n###" + " Assistant: A cat.\n###"
                + " Human: And its colour?\n###" + " Assistant:")  # fmt: skip
    ids = seen[1].input_ids[0].tolist()
    assert model.tokenizer.decode(ids[1:]) == expected
