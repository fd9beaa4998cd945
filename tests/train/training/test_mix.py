"""``sphinx-train mix``: theta_mix = beta * theta_real + (1 - beta) * theta_syn, by hand."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.slow


def test_mixed_tensors_equal_the_hand_computed_mix(tmp_path):
    from sphinx_train import SphinxModel, create_model
    from sphinx_train.cli import main

    models = []
    for seed, name in ((1, "real"), (2, "syn")):
        torch.manual_seed(seed)
        model = create_model("sphinx-nano")
        model.save_pretrained(tmp_path / name)
        models.append(model)
    assert main(["mix", str(tmp_path / "real"), str(tmp_path / "syn"), "--beta", "0.3",
                 "--out", str(tmp_path / "mixed")]) == 0
    mixed = SphinxModel.from_pretrained(tmp_path / "mixed")
    real, syn = models
    for part in ("llm.model.layers.1.self_attn.q_proj.weight", "encoder.visual_proj.0.weight"):
        a, b = real.state_dict()[part], syn.state_dict()[part]
        torch.testing.assert_close(mixed.state_dict()[part], 0.3 * a + 0.7 * b)
    frozen = next(n for n in real.state_dict() if n.startswith("encoder.patch_encoders."))
    assert torch.equal(mixed.state_dict()[frozen], real.state_dict()[frozen])
    assert main(["mix", str(tmp_path / "real"), str(tmp_path / "syn"),
                 "--out", str(tmp_path / "real" / "inside")]) == 1
