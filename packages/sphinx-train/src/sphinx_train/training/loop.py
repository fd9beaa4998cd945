"""The training loop behind ``sphinx-train fit``: both stages, resume, metrics, final export.

Each optimizer step takes ``per_step`` samples from every stream (stage 1: image captions
and text-only rows together), splits them over ranks and into length-grouped micro-batches,
and normalises the loss by the global number of supervised tokens of the whole step.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist

from sphinx_train._house import staged_file
from sphinx_train.training import checkpoint as ckpt
from sphinx_train.training.config import ConfigError, TrainConfig
from sphinx_train.training.data.encode import (
    Dropped,
    EncodedSample,
    encode_record,
    length_groups,
    preflight,
    split_to_count,
    token_budget_groups,
)
from sphinx_train.training.data.sampler import NaturalSampler, rank_share
from sphinx_train.training.data.sources import open_source
from sphinx_train.training.metrics import (
    MetricsLog,
    Warnings,
    learning_rate,
    peak_flops,
    tensorboard_writer,
    training_flops_per_token,
)
from sphinx_train.training.parallelize import (
    Runtime,
    average_replicated_grads,
    init_distributed,
    parallelize,
    set_trainable,
)


def build_model(config: TrainConfig):
    """The starting model, seeded so every rank (and every resume) builds the same weights."""
    torch.manual_seed(config.seed)
    if config.model.init:
        from sphinx_train.checkpoint import load_model

        return load_model(config.model.init, dtype=torch.float32)
    from sphinx_train.presets import create_model

    return create_model(
        config.model.preset, tokenizer=config.model.tokenizer, tiling=config.model.tiling,
        dtype=torch.float32,
    )


def optimizer_groups(model, weight_decay: float) -> list[dict]:
    """Sharded (LLM) and replicated (encoder) parameters apart, norms and biases without decay."""
    groups: dict[tuple[bool, bool], list] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        no_decay = param.ndim < 2 or "norm" in name or name.endswith(".bias")
        groups.setdefault((name.startswith("llm."), no_decay), []).append(param)
    return [
        {"params": params, "weight_decay": 0.0 if no_decay else weight_decay}
        for (_, no_decay), params in sorted(groups.items())
    ]


@torch.no_grad()
def clip_gradients(sharded_params, replicated_params, max_norm: float) -> float:
    """Global grad norm over sharded (DTensor) and replicated grads; scale both when above
    ``max_norm`` (0: no clipping). Returns the norm before clipping.

    Works on the local shards (plain tensors, one all-reduce of their squared norm): the
    same norm as over the DTensors, without DTensor dispatch on every gradient."""
    grads = [local_part(p.grad) for p in sharded_params if p.grad is not None]
    squares = torch.zeros(1, dtype=torch.float64)
    if grads:
        squares += torch.nn.utils.get_total_norm(grads).double().cpu() ** 2
    dist.all_reduce(squares)  # each rank holds a different part of the sharded grads
    replicated = [p.grad for p in replicated_params if p.grad is not None]
    if replicated:  # already averaged, the same on every rank: counted once
        squares += torch.nn.utils.get_total_norm(replicated).double().cpu() ** 2
    total = math.sqrt(squares.item())
    if max_norm > 0 and total > max_norm:
        grads += replicated
        if grads:
            torch._foreach_mul_(grads, max_norm / (total + 1e-6))
    return total


def local_part(tensor: torch.Tensor) -> torch.Tensor:
    """This rank's shard of a DTensor (a view: writing it writes the DTensor), else itself."""
    return tensor.to_local() if hasattr(tensor, "to_local") else tensor


@dataclass
class StepReport:
    loss: float
    source_loss: dict[str, float]
    grad_norm: float
    tokens: int
    images: int
    sources: list[str] = field(default_factory=list)
    truncated: int = 0  # samples of the step cut to max_length, all ranks
    dropped: int = 0  # samples of the step left out (see encode.Dropped), all ranks
    load_balancing: float | None = None  # Mixtral LLMs: mean over micro-batches and ranks
    rows: int = 0  # samples of the step, all ranks


class Trainer:
    def __init__(self, config: TrainConfig, out: Path, *, max_steps: int | None = None,
                 checkpoint_every: int | None = None):
        self.config, self.out = config, Path(out)
        self.max_steps = max_steps or config.schedule.total_steps
        self.checkpoint_every = checkpoint_every or config.checkpoint.every
        self.runtime: Runtime = init_distributed()
        self.warnings = Warnings()
        self.missing = self.seen = 0
        self.truncated = self.dropped = 0  # since step 0, all ranks (kept across resume)
        self.step_dropped = 0

    # -- setup ------------------------------------------------------------------------------

    def _resume_point(self) -> tuple[Path | None, dict | None]:
        found = ckpt.complete_checkpoints(self.out / "checkpoints")
        if not found:
            return None, None
        return found[-1], ckpt.verify(found[-1])

    def setup(self) -> None:
        config, runtime = self.config, self.runtime
        self.resume_path, resume_state = self._resume_point()  # refuses before writing anything
        self.model = build_model(config)
        self.source_names = [s.name for stream in config.data.streams for s in stream.sources]
        self.streams = []
        for stream in config.data.streams:
            sources = [open_source(source, config.seed) for source in stream.sources]
            weights = [source.weight for source in stream.sources]
            sampler = NaturalSampler([len(s) for s in sources], weights, seed=config.seed)
            self.streams.append((stream, sources, sampler))
        self.held_out = [open_source(source, config.seed + 1) for source in config.data.held_out]
        set_trainable(self.model, config.trainable)
        if config.model.qformer_train_mode:
            encoder = self.model.encoder
            qformer = None if encoder is None else encoder.query_encoder
            if qformer is None:
                raise ConfigError("model.qformer_train_mode: model "
                                  f"{config.model.init or config.model.preset!r} has no "
                                  "Q-Former; set it to false")
            qformer.dropout_in_training = True
        self._check_eval_tasks()
        self.features = self.source_ids = None
        if config.data.feature_cache and self.model.encoder is not None:
            from sphinx_train.training.features import TrainingFeatures, source_identity

            self.features = TrainingFeatures(config.data.feature_cache, self.model,
                                             runtime.rank, runtime.world_size)
            self.source_ids = {source.name: source_identity(source, config.seed)
                               for stream in config.data.streams for source in stream.sources}
        parallelize(self.model, config.parallel, runtime)
        self.routed = getattr(self.model.llm.config, "num_local_experts", 0) > 0  # Mixtral
        self.replicated = [p for n, p in self.model.named_parameters()
                           if p.requires_grad and not n.startswith("llm.")]
        self.sharded = [p for n, p in self.model.named_parameters()
                        if p.requires_grad and n.startswith("llm.")]
        fused = config.optimizer.fused
        if fused == "auto":  # one kernel per tensor, and no DTensor dispatch per op
            fused = runtime.device.type in ("cuda", "cpu")
        self.optimizer = torch.optim.AdamW(
            optimizer_groups(self.model, config.optimizer.weight_decay),
            lr=config.optimizer.lr, betas=tuple(config.optimizer.betas),
            eps=config.optimizer.eps, fused=fused or None,
        )
        self.warmup = self._warmup_steps()
        self.checkpoints = ckpt.CheckpointWriter(self.out / "checkpoints",
                                                 config.checkpoint.keep_latest_k,
                                                 config.checkpoint.async_save)
        self.step = 0
        if self.resume_path is not None:
            ckpt.load_checkpoint(self.resume_path, self.model, self.optimizer)
            self.step = resume_state["step"]
            for (_, _, sampler), state in zip(self.streams, resume_state["samplers"], strict=True):
                sampler.load_state_dict(state)
            self.missing, self.seen = resume_state["missing"], resume_state["seen"]
            self.truncated = resume_state.get("truncated", 0)
            self.dropped = resume_state.get("dropped", 0)
        if runtime.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            ckpt.clean_staging(self.out / "checkpoints")
            self._preflight()
            if self.resume_path is None:
                import yaml

                (self.out / "config.yaml").write_text(yaml.safe_dump(config.to_dict(),
                                                                     sort_keys=False))
            writer = (tensorboard_writer(self.out / "tensorboard",
                                         None if self.resume_path is None else self.step)
                      if config.logging.tensorboard else None)
            self.metrics = MetricsLog(self.out / "metrics.jsonl",
                                      None if self.resume_path is None else self.step, writer)
            self.samples_log = MetricsLog(self.out / "samples.jsonl",
                                          None if self.resume_path is None else self.step)
        dist.barrier()

    def _preflight(self) -> None:
        """Count what max_length and bad records will cost, per source, before step 1:
        printed for every source that loses samples, and written to OUT/preflight.json."""
        limit = self.config.data.preflight_samples
        if limit <= 0:
            return
        report = {}
        for stream, sources, _ in self.streams:
            for source in sources:
                counts = preflight(source, self.model, stream.template,
                                   self.config.data.max_length, limit)
                report[source.name] = {"checked": sum(counts.values()), **counts}
                lost = {why: n for why, n in counts.items() if why != "kept whole"}
                if lost:
                    print(f"sphinx-train fit: pre-flight {source.name}: "
                          + ", ".join(f"{n} {why}" for why, n in sorted(lost.items()))
                          + f" (of the first {report[source.name]['checked']})",
                          file=sys.stderr)
        with staged_file(self.out / "preflight.json", overwrite=True) as stage:
            stage.write_text(json.dumps(report, indent=1) + "\n")

    def _warmup_steps(self) -> int:
        schedule = self.config.schedule
        if schedule.warmup_epochs is None:
            return schedule.warmup_steps
        stream, _, sampler = self.streams[0]
        return max(1, math.ceil(schedule.warmup_epochs * sampler.epoch_length / stream.per_step))

    # -- one step ---------------------------------------------------------------------------

    def step_samples(self) -> list[EncodedSample]:
        """This rank's encoded samples of the next step (advances every sampler)."""
        mine, self.step_items, self.step_dropped = [], [], 0
        for stream, sources, sampler in self.streams:
            items = sampler.take(stream.per_step)
            self.step_items += [[sources[s].name, index] for s, index in items]
            for source_index, index in rank_share(items, self.runtime.rank,
                                                  self.runtime.world_size):
                source = sources[source_index]
                self.seen += 1
                record = source.record(index)
                if record is None:
                    self._count_missing(source.name, index)
                    continue
                try:
                    item = encode_record(record, self.model, stream.template,
                                         self.config.data.max_length)
                except Dropped as why:
                    self.step_dropped += 1
                    self.warnings.warn("dropped", f"{source.name}[{index}] dropped: {why}")
                    continue
                if self.features is not None and item.sample.pixel_values is not None:
                    item.image_key = self.features.key(self.source_ids[source.name], index,
                                                       record.tiling)
                mine.append(item)
        return mine

    def _count_missing(self, name: str, index: int) -> None:
        self.missing += 1
        self.warnings.warn("missing", f"{name}[{index}] could not be read")
        share = self.missing / max(1, self.seen)
        if self.seen >= 20 and share > self.config.data.max_missing_share:
            raise RuntimeError(
                f"{self.missing} of {self.seen} samples could not be read ({share:.1%}), more "
                f"than data.max_missing_share={self.config.data.max_missing_share}"
            )

    def train_step(self, samples: list[EncodedSample], lr: float) -> StepReport:
        """Forward/backward over the micro-batches, then clip and update."""
        from sphinx_train.batch import collate

        model = self.model
        world = self.runtime.world_size
        groups = self._micro_batches(samples)
        count = torch.tensor([sum(item.supervised for item in samples)], dtype=torch.float64)
        dist.all_reduce(count)
        total = count.item()
        names = self.source_names
        per_source = torch.zeros(2 * len(names), dtype=torch.float64)
        pad = model.tokenizer.pad_id if model.tokenizer.pad_id is not None else 0
        real_groups = sum(group is not None for group in groups)
        balance = torch.zeros(2, dtype=torch.float64)  # load-balancing loss sum, micro-batches
        for index, group in enumerate(groups):
            if hasattr(model, "set_requires_gradient_sync"):  # FSDP (absent on one fp32 rank)
                model.set_requires_gradient_sync(index == len(groups) - 1)
            filler = group is None  # this rank ran out of rows; keep the collectives in step
            group = groups[0] if filler else group
            batch = collate([item.sample for item in group], pad_id=pad)
            features = None
            if self.features is not None:
                features = self.features.features(
                    [item.image_key for item in group if item.image_key is not None], batch)
            output = model(batch, features=features)
            sums, counts = output.sample_loss_sum, output.sample_tokens
            objective = sums.sum() * (0.0 if filler else world / total)
            if output.load_balancing_loss is not None and not filler:
                # weighted as the reference (router_aux_loss_coef = load_balancing_weight),
                # averaged over micro-batches here and over ranks by the gradient averaging
                weight = self.model.llm.config.router_aux_loss_coef / real_groups
                objective = objective + weight * output.load_balancing_loss
                balance += torch.tensor([output.load_balancing_loss.item(), 1.0],
                                        dtype=torch.float64)
            objective.backward()
            for row, item in enumerate([] if filler else group):
                slot = names.index(item.source) if item.source in names else 0
                per_source[2 * slot] += sums[row].detach().double().item()
                per_source[2 * slot + 1] += counts[row].item()
        dist.all_reduce(per_source)
        if self.routed:
            dist.all_reduce(balance)
        average_replicated_grads(self.replicated)
        grad_norm = clip_gradients(self.sharded, self.replicated,
                                   self.config.optimizer.grad_clip)
        loss = per_source[0::2].sum().item() / total
        sources = sorted({item.source for item in samples})
        if not math.isfinite(loss) or not math.isfinite(grad_norm):
            done = ckpt.complete_checkpoints(self.out / "checkpoints")
            raise RuntimeError(
                f"loss {loss} at step {self.step + 1} (batch sources on rank "
                f"{self.runtime.rank}: {', '.join(sources)}); last good checkpoint: "
                f"{done[-1] if done else 'none'}"
            )
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        source_loss = {
            name: per_source[2 * i].item() / per_source[2 * i + 1].item()
            for i, name in enumerate(names) if per_source[2 * i + 1] > 0
        }
        counts = torch.tensor([sum(i.tokens for i in samples),
                               sum(i.sample.pixel_values is not None for i in samples),
                               sum(i.truncated for i in samples), self.step_dropped,
                               len(samples)])
        dist.all_reduce(counts)
        tokens, images, truncated, dropped, rows = counts.tolist()
        return StepReport(loss, source_loss, grad_norm, tokens, images, sources, truncated,
                          dropped, balance[0].item() / balance[1].item() if self.routed else None,
                          rows)

    def _micro_batches(self, samples: list[EncodedSample]) -> list:
        """A fixed number of length groups, or token-budget groups made as many on every
        rank (split, then padded with ``None``: a forward whose loss counts zero)."""
        budget = self.config.parallel.micro_batch_tokens
        if not budget:
            return length_groups(samples, self.config.parallel.micro_batches)
        if not samples:
            raise ValueError("no sample on this rank for this step; raise per_step")
        groups = token_budget_groups(samples, budget)
        count = torch.tensor([len(groups)])
        dist.all_reduce(count, op=dist.ReduceOp.MAX)
        groups = split_to_count(groups, int(count))
        return groups + [None] * (int(count) - len(groups))

    # -- evaluation -------------------------------------------------------------------------

    @torch.no_grad()
    def held_out_loss(self) -> float | None:
        """Token-mean loss on the held-out sources (same samples every time)."""
        if not self.held_out:
            return None
        from sphinx_train.batch import collate

        template = self.config.data.streams[0].template
        items = [(source, index) for source in self.held_out
                 for index in range(min(len(source), self.config.data.held_out_samples))]
        totals = torch.zeros(2, dtype=torch.float64)
        self.model.eval()
        for source, index in rank_share(items, self.runtime.rank, self.runtime.world_size):
            record = source.record(index)
            if record is None:
                continue
            item = encode_record(record, self.model, template, self.config.data.max_length)
            output = self.model(collate([item.sample]))
            sums, counts = output.sample_loss_sum, output.sample_tokens
            totals += torch.tensor([sums.sum().item(), counts.sum().item()], dtype=torch.float64)
        self.model.train()
        dist.all_reduce(totals)
        return totals[0].item() / max(1.0, totals[1].item())

    # -- the run ----------------------------------------------------------------------------

    def _log_held_out(self) -> None:
        if self.config.logging.eval_every:
            held_out = self.held_out_loss()
            if self.runtime.rank == 0 and held_out is not None:
                self.metrics.write({"step": self.step, "held_out_loss": held_out})
            if self.config.logging.eval_tasks:
                self._log_generation_scores()

    def _check_eval_tasks(self) -> None:
        """Every ``logging.eval_tasks`` entry names a registered task, before step 1."""
        logging = self.config.logging
        if not logging.eval_tasks:
            return
        import sphinx_train.evaluation.tasks  # noqa: F401 (registers the built-in tasks)
        from sphinx_train.evaluation.command_body import import_tasks
        from sphinx_train.evaluation.registry import get_task

        if logging.eval_tasks_module:
            import_tasks(logging.eval_tasks_module, "logging.eval_tasks_module")
        for index, task in enumerate(logging.eval_tasks):
            try:
                get_task(task.task)
            except KeyError as err:
                raise ConfigError(f"logging.eval_tasks.{index}.task: {err.args[0]}") from None

    def _log_generation_scores(self) -> None:
        """Score ``logging.eval_tasks`` by generation on rank 0 (results under
        OUT/eval/step-N/TASK/, numbers in metrics.jsonl as ``eval/TASK/SPLIT/METRIC``). A
        sharded model is first gathered into an unsharded copy: generation lengths differ
        between samples, so ranks could not run a sharded model in step."""
        from sphinx_train.evaluation import EvalOptions, run_eval

        if hasattr(self.model, "set_requires_gradient_sync"):  # FSDP-wrapped
            model = ckpt.gather_full_model(self.model, lambda: build_model(self.config))
        else:
            model = self.model
        if self.runtime.rank == 0:
            model.eval()
            record = {"step": self.step}
            for task in self.config.logging.eval_tasks:
                out = self.out / "eval" / f"step-{self.step}" / task.task
                results = run_eval(model, EvalOptions(
                    task=task.task, data=Path(task.data), out=out, splits=task.splits,
                    images=Path(task.images) if task.images else None, limit=task.limit,
                    overwrite=True, progress=False))
                for split, numbers in results[task.task].items():
                    record.update({f"eval/{task.task}/{split}/{name}": value
                                   for name, value in numbers.items()
                                   if isinstance(value, (int, float)) and name != "n"})
            self.metrics.write(record)
            self.model.train()
        dist.barrier()

    def trainer_state(self) -> dict:
        return {"step": self.step, "samplers": [s.state_dict() for _, _, s in self.streams],
                "missing": self.missing, "seen": self.seen, "truncated": self.truncated,
                "dropped": self.dropped}

    def save(self) -> None:
        self.checkpoints.save(self.step, self.model, self.optimizer, self.trainer_state())

    def run(self) -> Path:
        self.setup()
        config, rank = self.config, self.runtime.rank
        progress = None
        if rank == 0 and config.logging.progress:
            from tqdm import tqdm

            progress = tqdm(total=self.max_steps, initial=self.step, desc="fit", unit="step")
        self.model.train()
        if self.step == 0:
            self._log_held_out()  # the starting point, to see learning against
        while self.step < self.max_steps:
            # RNG as a function of (seed, step, rank): resume needs no RNG state.
            torch.manual_seed(config.seed * 1_000_003 + self.step * 1009 + rank)
            started = time.perf_counter()
            samples = self.step_samples()
            lr = learning_rate(self.step, config.optimizer.lr, config.optimizer.min_lr,
                               self.warmup, config.schedule.total_steps)
            report = self.train_step(samples, lr)
            self.step += 1
            self.truncated += report.truncated
            self.dropped += report.dropped
            elapsed = time.perf_counter() - started
            if rank == 0 and (self.step % config.logging.every == 0
                              or self.step == self.max_steps):
                self.metrics.write(self._record(report, lr, elapsed))
            if rank == 0 and config.logging.samples:
                self.samples_log.write({"step": self.step, "samples": self.step_items})
            if config.logging.eval_every and self.step % config.logging.eval_every == 0:
                self._log_held_out()
            if self.step % self.checkpoint_every == 0 or self.step == self.max_steps:
                self.save()
            if progress is not None:
                progress.update(1)
                progress.set_postfix(loss=f"{report.loss:.3f}")
        if progress is not None:
            progress.close()
        self.checkpoints.finish()
        ckpt.export_final(self.model, lambda: build_model(config), self.out / "final",
                          torch.bfloat16)
        return self.out

    def _record(self, report: StepReport, lr: float, elapsed: float) -> dict:
        record = {"step": self.step, "loss": report.loss}
        record.update({f"loss/{name}": value for name, value in report.source_loss.items()})
        if report.load_balancing is not None:
            record["loss/load_balancing"] = report.load_balancing
        record.update({
            "lr": lr, "grad_norm": report.grad_norm, "tokens_per_s": report.tokens / elapsed,
            "images_per_s": report.images / elapsed, "tokens": report.tokens,
            "samples_truncated": self.truncated, "samples_dropped": self.dropped,
        })
        if self.runtime.device.type == "cuda":
            record["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
            peak = peak_flops(torch.cuda.get_device_name(), self.config.logging.peak_tflops)
            if peak is not None and report.rows:
                per_token = training_flops_per_token(self.model.llm.config,
                                                     report.tokens / report.rows)
                record["mfu"] = per_token * report.tokens / elapsed / (
                    peak * self.runtime.world_size)
        return record


def fit(config: TrainConfig, out: str | Path, **options) -> Path:
    """Train (or resume) into ``out``; the same call under torchrun runs on every rank."""
    return Trainer(config, Path(out), **options).run()
