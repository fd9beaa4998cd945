"""Grounding levers: which model options make the demo model learn REC, measured one at a time.

A plain AdamW loop over ``SphinxModel.loss`` (no trainer, so a variant costs only its steps)
on fresh synthetic scenes, with held-out REC Acc@0.5 on 2-4 object scenes (the questions and
baselines of grounding_probe.py) every ``--eval-every`` steps. Each flag is one lever of the
``sphinx-demo`` preset: the tokenizer's grounding vocabulary, fixed 2-D positions on the patch
tokens, the image-token scale, the LLM's shape, the batch size, the task mix, the patch grid,
the image's place in the sequence. Appends a table
to benchmarks/results/grounding_levers.md.

    uv run python benchmarks/train/grounding_levers.py --label demo --steps 1200 --batch 16
    uv run python benchmarks/train/grounding_levers.py --label no-positions --positions none
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from grounding_probe import baselines, held_out_questions, rec_accuracy


def build(args):
    from sphinx_encoders import get_encoder_config, register_encoder
    from sphinx_train.llm import LLM_SHAPES, LlamaShape
    from sphinx_train.presets import create_model, get_model_preset, register_model_preset

    width, hidden, layers, heads = map(int, args.shape.split(","))
    LLM_SHAPES["levers"] = LlamaShape(width, hidden, layers, heads)
    encoder = dataclasses.replace(get_encoder_config("sphinx-demo"), name="levers",
                                  patch_positions=args.positions)
    if args.grid != 7:  # the ViT's patch and the ConvNeXt's output grid follow the grid
        vit, convnext = encoder.patch_encoders
        encoder = dataclasses.replace(encoder, patch_encoders=[
            dataclasses.replace(vit, patch_size=224 // args.grid),
            dataclasses.replace(convnext, output_grid=args.grid),
        ])
    register_encoder("levers", encoder, overwrite=True)
    preset = dataclasses.replace(
        get_model_preset("sphinx-demo"), llm_shape="levers", encoder="levers",
        grounding_vocabulary=args.vocabulary == "grounding", image_token_scale=args.scale,
    )
    register_model_preset("levers", preset, overwrite=True)
    return create_model("levers")


def place_image_after_prompt(model) -> None:
    """[BOS | prompt | image | answer] instead of [BOS | image | prompt | answer].

    With the image after the question, causal attention lets every image token see the
    phrase, so the patch tokens can mark the named object before the answer reads them
    (the issue's minimal reader: attention queried by the name). Done by rotating each
    row of the standard assembly; the prompt ends at the first supervised text token
    (the first answer: later turns of a conversation come after the image), or at the end
    of the text when generating.
    """
    from sphinx_train.model import IGNORE_INDEX

    assemble = model.assemble_inputs

    def rotated(batch, padding_side="right", features=None):
        inputs = assemble(batch, padding_side, features)
        for row in range(inputs.inputs_embeds.shape[0]):
            count = int(inputs.image_tokens[row])
            valid = inputs.attention_mask[row].nonzero().flatten()
            start, end = int(valid[0]), int(valid[-1]) + 1
            text = end - start - 1 - count
            prompt = text
            if inputs.labels is not None:
                supervised = (inputs.labels[row, start + 1 + count : end] != IGNORE_INDEX)
                if supervised.any():
                    prompt = int(supervised.nonzero()[0])
            body = torch.arange(start + 1, end)
            order = torch.cat([body[count : count + prompt], body[:count], body[count + prompt :]])
            for tensor in (inputs.inputs_embeds, inputs.labels):
                if tensor is not None:
                    tensor[row, start + 1 : end] = tensor[row, order].clone()
        return inputs

    model.assemble_inputs = rotated


def init_coordinate_embeddings(model) -> None:
    """Rows of each coordinate token "0.00".."1.00" set to the sin-cos features of its value.

    The patch tokens carry ``sincos_2d_positions`` of their cell (x in the first half of the
    channels, y in the second); a coordinate v is the position v * grid in cell units, so
    its row holds the features of x = y = v * grid: copying a patch's position into the
    residual stream then already scores the right coordinate values highest.
    """
    from sphinx_train.nano_tokenizer import COORDINATE_TOKENS

    grid = math.isqrt(model.encoder.patch_tokens - 1)
    dim = model.llm.get_input_embeddings().weight.shape[1]
    quarter = dim // 4
    frequencies = 100.0 ** (-torch.arange(quarter, dtype=torch.float64) / quarter)
    ids = [model.processor.tokenizer.encode(value) for value in COORDINATE_TOKENS]
    assert all(len(one) == 1 for one in ids), "coordinate tokens need the grounding vocabulary"
    ids = [one[0] for one in ids]
    values = torch.tensor([float(value) for value in COORDINATE_TOKENS], dtype=torch.float64)
    angles = (values * grid)[:, None] * (torch.pi / 2) * frequencies
    along = torch.cat([angles.sin(), angles.cos()], dim=1)
    rows = torch.cat([along, along], dim=1).float()
    with torch.no_grad():
        for matrix in (model.llm.get_input_embeddings().weight,
                       model.llm.get_output_embeddings().weight):
            scale = matrix.norm(dim=1).mean() / rows.norm(dim=1).mean()
            matrix[ids] = rows * scale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="", help="name of this variant in the results file")
    parser.add_argument("--vocabulary", choices=("plain", "grounding"), default="grounding",
                        help="nano tokenizer without / with scene words and coordinate tokens")
    parser.add_argument("--positions", choices=("none", "sincos-2d"), default="sincos-2d",
                        help="fixed 2-D positions on the projected patch tokens")
    parser.add_argument("--scale", type=float, default=1.0, help="image_token_scale")
    parser.add_argument("--shape", default="128,352,2,4", help="LLM width,ffn,layers,heads")
    parser.add_argument("--tasks", default="rec-all", help="synthetic tasks, comma-separated")
    parser.add_argument("--batch", type=int, default=16, help="scenes per step")
    parser.add_argument("--steps", type=int, default=1200, help="optimizer steps")
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (cosine)")
    parser.add_argument("--eval-every", type=int, default=400, help="steps between REC checks")
    parser.add_argument("--scenes", type=int, default=64, help="held-out REC questions")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--coordinate-init", choices=("random", "sincos"), default="random",
                        help="coordinate tokens' input and output embeddings: random, or the "
                        "2-D sin-cos features of their value (what the patch positions use)")
    parser.add_argument("--grid", type=int, choices=(7, 14), default=7,
                        help="patch grid per 224 view (14: ViT patch 16, ConvNeXt upsampled)")
    parser.add_argument("--layout", choices=("image-first", "image-after-prompt"),
                        default="image-first", help="where the image tokens go in the sequence")
    parser.add_argument("--split-turns", action="store_true",
                        help="every turn of a conversation as its own sample (same image)")
    parser.add_argument("--train-encoder", action="store_true",
                        help="train the (random) patch backbones too: a trainable stem")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    from sphinx_train.training.synthetic import make_scene, task_conversation

    model = build(args)
    if args.layout == "image-after-prompt":
        place_image_after_prompt(model)
    if args.coordinate_init == "sincos":
        init_coordinate_embeddings(model)
    for name, param in model.named_parameters():  # the demo's split: backbones frozen
        param.requires_grad = args.train_encoder or not name.startswith("encoder.patch_encoders.")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.95), weight_decay=0.05)
    tasks = args.tasks.split(",")
    rows = held_out_questions(args.scenes)
    base = baselines(rows)
    lines = [
        f"## {args.label or 'variant'}: vocabulary {args.vocabulary}, positions {args.positions}, "
        f"scale {args.scale:g}, LLM {args.shape}, tasks {args.tasks}, batch {args.batch}, "
        f"lr {args.lr:g}, grid {args.grid}x{args.grid}, layout {args.layout}"
        + (", turns split" if args.split_turns else ""),
        f"load average at start: {os.getloadavg()[0]:.1f} (2 cores); torch threads {args.threads}",
        f"baselines on {len(rows)} held-out 2-4 object scenes: "
        + ", ".join(f"{k} {v:.3f}" for k, v in base.items()),
        "",
        "| steps | train s | loss | REC Acc@0.5 | minus best baseline |",
        "|---:|---:|---:|---:|---:|",
    ]
    print("\n".join(lines), flush=True)
    trained, smooth, seed = 0.0, None, 0
    for step in range(1, args.steps + 1):
        began = time.perf_counter()
        progress = 0.5 * (1 + math.cos(math.pi * step / args.steps))
        for group in optimizer.param_groups:
            group["lr"] = args.lr * min(1.0, step / 20) * (0.03 + 0.97 * progress)
        samples = []
        for index in range(seed, seed + args.batch):
            scene = make_scene(index, min_objects=2, max_objects=4, unique_phrases=True)
            turns = task_conversation(scene, tasks[index % len(tasks)], index)
            pieces = [turns[i : i + 2] for i in range(0, len(turns), 2)] if args.split_turns \
                else [turns]
            samples += [model.prepare_sample(piece, scene.image) for piece in pieces]
        seed += args.batch
        loss = model.loss(samples).loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        trained += time.perf_counter() - began
        smooth = loss.item() if smooth is None else 0.9 * smooth + 0.1 * loss.item()
        if step % args.eval_every == 0 or step == args.steps:
            model.eval()
            with torch.no_grad():
                accuracy = rec_accuracy(model, rows)
            model.train()
            line = (f"| {step} | {trained:.0f} | {smooth:.3f} | {accuracy:.3f} | "
                    f"{accuracy - max(base.values()):+.3f} |")
            lines.append(line)
            print(line, flush=True)
    results = Path(__file__).resolve().parents[1] / "results" / "grounding_levers.md"
    with results.open("a") as handle:
        handle.write("\n".join(lines) + "\n\n")


if __name__ == "__main__":
    main()
