"""Run by test_dist.py under torchrun (2 ranks): rank 0 holds only image rows, rank 1 only
text-only rows. Prints one JSON line on rank 0: the step's totals and whether the trainable
projections are still identical on both ranks after the update."""

from __future__ import annotations

import json
import sys

import torch
import torch.distributed as dist

from sphinx_train.training.config import load_config
from sphinx_train.training.data.encode import encode_record
from sphinx_train.training.loop import Trainer


def main(out: str) -> None:
    config = load_config("nano-stage1", ["parallel.micro_batches=1", "logging.progress=false"])
    trainer = Trainer(config, out)
    trainer.setup()
    rank = trainer.runtime.rank
    stream, sources, _ = trainer.streams[0 if rank == 0 else 1]  # captions / text
    samples = [encode_record(sources[0].record(index), trainer.model, stream.template,
                             config.data.max_length) for index in range(2)]
    projection = trainer.replicated[0]
    before = projection.detach().clone()
    report = trainer.train_step(samples, lr=1e-3)
    gathered = [None, None]
    dist.all_gather_object(gathered, projection.detach().clone())
    if rank == 0:
        print(json.dumps({
            "images": report.images, "loss": report.loss,
            "sources": sorted(report.source_loss),
            "projection_moved": not torch.equal(before, projection.detach()),
            "projection_equal_on_ranks": torch.equal(gathered[0], gathered[1]),
        }))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
