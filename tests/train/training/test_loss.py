"""The step's loss is the global token mean: sum of token NLL / all supervised tokens of the
step, not the mean of per-micro-batch means (which over-weights short answers)."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist

from sphinx_train.batch import SphinxSample, collate
from sphinx_train.conversation import IGNORE_INDEX
from sphinx_train.training.config import load_config
from sphinx_train.training.data.encode import EncodedSample
from sphinx_train.training.loop import Trainer, build_model
from sphinx_train.training.parallelize import set_trainable

pytestmark = pytest.mark.slow


def text_sample(ids: list[int], supervised_from: int) -> EncodedSample:
    labels = [IGNORE_INDEX] * supervised_from + ids[supervised_from:]
    count = sum(label != IGNORE_INDEX for label in labels[1:])
    return EncodedSample(SphinxSample(ids, labels, None), "text", len(ids), count)


def hand_nll(model, sample: SphinxSample) -> list[torch.Tensor]:
    """-log p(next token) at every supervised position, from the logits alone."""
    logits = model(collate([sample])).logits[0]
    assert logits.shape[0] == len(sample.input_ids)
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    return [-log_probs[t, sample.labels[t + 1]] for t in range(len(sample.input_ids) - 1)
            if sample.labels[t + 1] != IGNORE_INDEX]


# two micro-batches either way: a fixed count, or a 45-token budget (2 x 40 > 45)
@pytest.fixture(params=["parallel.micro_batches=2", "parallel.micro_batch_tokens=45"])
def trainer(tmp_path, request):
    config = load_config("nano-stage1", [request.param, "logging.progress=false",
                                         "optimizer.grad_clip=0"])
    trainer = Trainer(config, tmp_path / "run")
    trainer.setup()
    yield trainer
    dist.destroy_process_group()


def test_loss_is_the_global_token_mean_over_uneven_micro_batches(trainer):
    torch.manual_seed(3)
    vocab = trainer.model.llm.config.vocab_size
    # micro-batch 1: 9 supervised of 10 tokens; micro-batch 2: 2 supervised of 40 tokens
    short = text_sample(torch.randint(3, vocab, (10,)).tolist(), supervised_from=1)
    long = text_sample(torch.randint(3, vocab, (40,)).tolist(), supervised_from=38)
    assert (short.supervised, long.supervised) == (9, 2)

    reference = build_model(trainer.config)  # the same seeded start as the trainer's model
    trainable = set(set_trainable(reference, trainer.config.trainable))
    nll_short, nll_long = hand_nll(reference, short.sample), hand_nll(reference, long.sample)
    token_mean = torch.stack(nll_short + nll_long).sum() / 11
    mean_of_means = (torch.stack(nll_short).mean() + torch.stack(nll_long).mean()) / 2
    token_mean.backward()
    grads = [p.grad for n, p in reference.named_parameters() if n in trainable]
    expected_norm = sum(float((g.double() ** 2).sum()) for g in grads if g is not None) ** 0.5

    report = trainer.train_step([long, short], lr=0.0)
    assert abs(token_mean.item() - mean_of_means.item()) > 1e-3  # the two rules differ here
    assert report.loss == pytest.approx(token_mean.item(), abs=1e-5)
    assert report.grad_norm == pytest.approx(expected_norm, rel=1e-4)
