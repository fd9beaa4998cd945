"""Config loading: presets, overrides, one-line errors naming the key."""

from __future__ import annotations

import pytest

from sphinx_train.training.config import ConfigError, list_presets, load_config


def test_builtins_listed_and_paper_values_in_templates():
    assert {"nano-stage1", "nano-stage2", "sphinx-7b-stage1", "sphinx-13b-1k-stage2"} <= set(
        list_presets()
    )
    stage1 = load_config("sphinx-7b-stage1")
    # Paper, stage 1: AdamW (0.9, 0.95), wd 0.1, cosine 5e-5 -> 5e-6 over 180k, 2k warm-up,
    # 640 pairs + 65,536 text tokens, no template.
    assert stage1.optimizer.betas == [0.9, 0.95] and stage1.optimizer.weight_decay == 0.1
    assert (stage1.optimizer.lr, stage1.optimizer.min_lr) == (5e-5, 5e-6)
    assert (stage1.schedule.total_steps, stage1.schedule.warmup_steps) == (180_000, 2000)
    captions, text = stage1.data.streams
    assert captions.per_step == 640 and captions.template is None
    assert text.per_step * stage1.data.max_length == 65_536
    stage2 = load_config("sphinx-13b-1k-stage2")
    assert stage2.data.streams[0].per_step == 128 and stage2.data.max_length == 3072
    assert (stage2.optimizer.lr, stage2.optimizer.min_lr) == (2e-5, 0.0)
    assert stage2.schedule.warmup_epochs == 0.03


def test_dotted_overrides_with_type_checks():
    config = load_config("nano-stage1", ["optimizer.lr=1e-4", "data.streams.1.per_step=6"])
    assert config.optimizer.lr == 1e-4 and config.data.streams[1].per_step == 6
    assert load_config("nano-stage1", ["optimizer.lr=1"]).optimizer.lr == 1.0  # int -> float
    # YAML reads no/yes as booleans: both spellings of the choice must load
    assert load_config("nano-stage1", ["optimizer.fused=no"]).optimizer.fused is False
    assert load_config("nano-stage1", ["optimizer.fused=true"]).optimizer.fused is True


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("optimizer.lrr=1", "optimizer.lrr: unknown key"),
        ("optimizer.lr=fast", "optimizer.lr: expected float, got 'fast'"),
        ("data.streams.0.per_step=many", "data.streams.0.per_step: expected int"),
        ("parallel.compile=3", "parallel.compile: expected bool"),
        ("optimizer.fused=maybe", "optimizer.fused: expected auto, true or false, got 'maybe'"),
        ("data.streams.0.sources.0.kind=hdf5", "data.streams.0.sources.0.kind: 'hdf5'"),
        ("data.streams.5.per_step=1", "--set data.streams.5.per_step: '5' is not an index"),
    ],
)
def test_bad_values_give_one_line_naming_the_key(override, named):
    with pytest.raises(ConfigError) as error:
        load_config("nano-stage1", [override])
    assert named in str(error.value) and "\n" not in str(error.value)


def test_unknown_config_and_template_paths(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown config 'nope'.*nano-stage1"):
        load_config("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [1, 2]\n")
    with pytest.raises(ConfigError, match="model: expected a mapping"):
        load_config(bad)


def test_a_binary_config_file_is_one_line_naming_it(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_bytes(b"seed: 1\n\x89PNG")  # the bad byte is at offset 8
    with pytest.raises(ConfigError, match=r"run\.yaml: not a UTF-8 text config \(byte 8\)"):
        load_config(path)
