"""Process group, trainable parts, activation checkpointing, compile and FSDP2 sharding.

Only the LLM is sharded (embedding, each decoder layer, then the model root). The visual encoder stays
outside FSDP, replicated on every rank: its frozen backbones run without grad, and its
trainable projections are averaged across ranks by one all-reduce after backward. So a
rank whose rows are all text-only takes part in every collective, and nothing hangs.
A single rank computing in fp32 without offload is left unwrapped (FSDP would do nothing).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from sphinx_train.training.config import ParallelConfig


@dataclass
class Runtime:
    rank: int
    world_size: int
    device: torch.device


def init_distributed() -> Runtime:
    """torchrun's environment when present, else a one-process group (same code path)."""
    cuda = torch.cuda.is_available()
    if not dist.is_initialized():
        backend = "nccl" if cuda else "gloo"
        if "WORLD_SIZE" in os.environ:
            if os.environ.get("MASTER_PORT") == "0":
                # torchrun passes port 0 on literally: every worker would wait in rendezvous
                # for a store on port 0 forever.
                raise ValueError("MASTER_PORT=0: torchrun does not pick a free port for the "
                                 "workers; use torchrun --standalone or a real --master_port")
            dist.init_process_group(backend)
        else:
            dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
    rank = dist.get_rank()
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    return Runtime(rank, dist.get_world_size(), device)


def set_trainable(model, parts: list[str]) -> list[str]:
    """requires_grad per the config's parts; returns the trainable parameter names."""
    projections = set()
    if model.encoder is not None:
        projections = {f"encoder.{name}" for name, _ in model.encoder.named_trainable_parameters()}
    names = []
    for name, param in model.named_parameters():
        wanted = (
            ("llm" in parts and name.startswith("llm."))
            or ("projections" in parts and name in projections)
            or any(name.startswith(part + ".") or name == part for part in parts
                   if part.startswith("encoder."))
        )
        param.requires_grad_(wanted)
        if wanted:
            names.append(name)
    if not names:
        raise ValueError(f"trainable {parts}: matches no parameter of the model")
    return names


def param_dtype(config: ParallelConfig, device: torch.device) -> torch.dtype:
    """bf16 compute on GPU, fp32 on CPU, unless the config names one."""
    if config.param_dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    from sphinx_train._house import dtype_name

    return getattr(torch, dtype_name(config.param_dtype))


def parallelize(model, config: ParallelConfig, runtime: Runtime) -> None:
    """AC and compile per decoder block, then FSDP2 on the embedding, each block and the root
    (not for one rank in fp32 without offload, where FSDP would do nothing)."""
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper
    from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, fully_shard

    compute = param_dtype(config, runtime.device)
    if model.encoder is not None:
        model.encoder.to(runtime.device)
        for _, backbone in model.encoder.backbones():
            backbone.to(compute)
    layers: nn.ModuleList = model.llm.model.layers
    for index, layer in enumerate(layers):
        checkpointed = config.activation_checkpointing == "full" or (
            config.activation_checkpointing == "selective" and index % 2 == 0
        )
        if checkpointed:
            layer = checkpoint_wrapper(layer)
        if config.compile:
            layer.compile()
        layers[index] = layer
    if runtime.world_size == 1 and compute == torch.float32 and not config.cpu_offload:
        # One rank computing in fp32: FSDP would shard nothing and cast nothing, only add
        # hooks and DTensor dispatch (about 10% of a nano step on CPU).
        model.llm.to(runtime.device)
        return
    mesh = torch.distributed.device_mesh.init_device_mesh(
        runtime.device.type, (runtime.world_size,)
    )
    options = {
        "mesh": mesh,
        "mp_policy": MixedPrecisionPolicy(param_dtype=compute, reduce_dtype=torch.float32),
    }
    if config.cpu_offload:
        options["offload_policy"] = CPUOffloadPolicy()
    # The embedding runs outside the LLM's forward (SphinxModel assembles the inputs), so it
    # is its own unit: its forward hook gathers it.
    for block in [model.llm.get_input_embeddings(), *layers]:
        fully_shard(block, **options)
    # The root is the whole model so that its forward starts FSDP; the encoder's parameters
    # are left out of it (replicated, see the module docstring).
    encoder = set(model.encoder.parameters()) if model.encoder is not None else set()
    fully_shard(model, ignored_params=encoder, **options)
    if not config.cpu_offload:
        model.llm.to(runtime.device)


def average_replicated_grads(params: list[torch.Tensor]) -> None:
    """Mean of the replicated (non-FSDP) gradients over ranks; a missing grad counts as zero."""
    if not params:
        return
    for param in params:
        if param.grad is None:
            param.grad = torch.zeros_like(param)
    flat = torch.cat([param.grad.reshape(-1) for param in params])
    if dist.get_world_size() > 1:
        dist.all_reduce(flat)
        flat /= dist.get_world_size()
    offset = 0
    for param in params:
        count = param.numel()
        param.grad.copy_(flat[offset : offset + count].view_as(param))
        offset += count
