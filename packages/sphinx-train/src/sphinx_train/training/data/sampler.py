"""Natural-frequency sampling with a resumable, world-size-free state.

An epoch is one shuffled pass over every source, each source appearing
``round(weight * size)`` times, so a source is drawn with probability proportional to its
(weighted) size. The whole state is ``{seed, epoch, cursor}``: ``cursor`` counts positions of
the global order, and each rank's share of a step is a pure function of the positions, so a
run resumed on a different number of ranks continues the same order.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import torch


class NaturalSampler:
    def __init__(self, sizes: Sequence[int], weights: Sequence[float] | None = None, seed: int = 0):
        weights = weights or [1.0] * len(sizes)
        self.counts = [max(1, round(w * n)) if n else 0 for w, n in zip(weights, sizes, strict=True)]
        self.sizes = list(sizes)
        if not sum(self.counts):
            raise ValueError("every source is empty")
        self.starts = [sum(self.counts[:i]) for i in range(len(self.counts))]
        self.seed, self.epoch, self.cursor = seed, 0, 0
        self._order: tuple[int, torch.Tensor] | None = None

    @property
    def epoch_length(self) -> int:
        return sum(self.counts)

    def _permutation(self, epoch: int) -> torch.Tensor:
        if self._order is None or self._order[0] != epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._order = (epoch, torch.randperm(self.epoch_length, generator=generator))
        return self._order[1]

    def item(self, epoch: int, position: int) -> tuple[int, int]:
        """(source, index in source) at a position of an epoch's order."""
        entry = int(self._permutation(epoch)[position])
        source = bisect.bisect_right(self.starts, entry) - 1
        return source, (entry - self.starts[source]) % self.sizes[source]

    def take(self, count: int) -> list[tuple[int, int]]:
        """The next ``count`` global positions (all ranks together); advances the state."""
        items = []
        for _ in range(count):
            if self.cursor >= self.epoch_length:
                self.epoch, self.cursor = self.epoch + 1, 0
            items.append(self.item(self.epoch, self.cursor))
            self.cursor += 1
        return items

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.seed, "epoch": self.epoch, "cursor": self.cursor}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state["seed"] != self.seed:
            raise ValueError(f"sampler seed {state['seed']} in the checkpoint, {self.seed} configured")
        self.epoch, self.cursor = int(state["epoch"]), int(state["cursor"])


def rank_share(items: Sequence, rank: int, world_size: int) -> list:
    """This rank's items of a step: every world_size-th, starting at its rank."""
    return list(items[rank::world_size])
