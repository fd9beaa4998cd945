"""The paper's weight mix: theta_mix = beta * theta_real + (1 - beta) * theta_syn.

Mixed are the LLM and the encoder's trainable parts (projections, start/end vectors), with
sphinx-mix's linear mix; the frozen backbones, tokenizer and processor come from the first
model. The result is a model folder that ``fit`` can start from (``model.init``).
"""

from __future__ import annotations

from pathlib import Path


def mixed_names(model) -> list[str]:
    """State-dict names that training changes: the LLM and the encoder's trainable parts."""
    names = [f"llm.{name}" for name in model.llm.state_dict()]
    if model.encoder is not None:
        names += [f"encoder.{name}" for name, _ in model.encoder.named_trainable_parameters()]
    return names


def mix_models(real: str | Path, synthetic: str | Path, out: str | Path, *, beta: float = 0.5,
               overwrite: bool = False) -> Path:
    import sphinx_mix
    from sphinx_train._house import check_output
    from sphinx_train.checkpoint import load_model

    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"--beta {beta}: expected a number from 0 to 1")
    check_output(out, [real, synthetic], overwrite=overwrite)
    first, second = load_model(real), load_model(synthetic)
    names = mixed_names(first)
    state_a, state_b = first.state_dict(), second.state_dict()
    missing = [name for name in names if name not in state_b]
    if missing:
        raise ValueError(f"{synthetic}: lacks {missing[:3]} of {real}; not the same architecture")
    mixed = sphinx_mix.linear(
        [{n: state_a[n] for n in names}, {n: state_b[n] for n in names}],
        beta=beta, progress=False,
    )
    first.load_state_dict(mixed, strict=False)
    return first.save_pretrained(out, overwrite=overwrite)
