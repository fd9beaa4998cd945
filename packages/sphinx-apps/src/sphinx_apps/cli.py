"""``sphinx-apps``: the recipes on one image, writing mask.png, result.png, overlay.png, result.json."""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import version

from ._house import run_cli

PROG = "sphinx-apps"

EPILOG = """examples:
  sphinx-apps segment photo.jpg "the dog" --box 40,60,310,420 --out dog/
  sphinx-apps remove photo.jpg "the dog" --box 40,60,310,420 --dilate 15 --out no-dog/
  sphinx-apps segment photo.jpg "the dog" --model sphinx-folder/ --segmenter sam --sam sam-vit-b/ --out dog/
  sphinx-apps remove photo.jpg "the dog" --model sphinx-folder/ --inpainter lama --lama big-lama.pt --out no-dog/
  sphinx-apps edit photo.jpg "the dog" --box 40,60,310,420 --prompt "a red fox" \\
      --inpainter diffusion --diffusion sd-inpainting/ --out fox/
  sphinx-apps dense-caption photo.jpg --model sphinx-folder/ --out captions/
  sphinx-apps reason photo.jpg "How many people are there?" --model sphinx-folder/ --out answer/
  sphinx-apps pose photo.jpg "the man in red" --model sphinx-folder/ --out pose/

Boxes are pixel corners x1,y1,x2,y2 of IMAGE. Weights are read from local paths only.
The output folder gets mask.png and result.png (segment, remove, edit), overlay.png and
result.json (every command)."""


def _box(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected x1,y1,x2,y2 numbers") from None
    if len(values) != 4:
        raise argparse.ArgumentTypeError(f"{text!r}: expected 4 numbers x1,y1,x2,y2")
    return values


def _common(parser: argparse.ArgumentParser, phrase: str, needs_model: bool) -> None:
    parser.add_argument("image", metavar="IMAGE", help="the photo (any format Pillow reads)")
    parser.add_argument("phrase", metavar="PHRASE", **phrase_options(phrase))
    source = parser.add_argument_group("where the regions come from")
    source.add_argument(
        "--model",
        metavar="DIR",
        help="a SPHINX model folder (SphinxModel.save_pretrained); "
        "needs sphinx-apps[sphinx]" + ("; required" if needs_model else ""),
    )
    source.add_argument(
        "--box",
        metavar="x1,y1,x2,y2",
        type=_box,
        action="append",
        default=[],
        help="a region in pixels instead of asking the model (repeat for several)",
    )
    source.add_argument(
        "--detect",
        action="store_true",
        help='find every instance of PHRASE as a category ("Detect all PHRASE ...") instead of '
        "the one object it refers to",
    )
    parser.add_argument("--out", metavar="DIR", required=True, help="output folder (created)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier output folder")
    parser.add_argument("--device", default="cpu", help="torch device for the models (default cpu)")
    parser.add_argument(
        "--max-new-tokens", type=int, default=256, help="longest SPHINX answer (default 256)"
    )


def phrase_options(kind: str) -> dict:
    if kind == "optional":
        return {"nargs": "?", "default": None, "help": "unused (every object is captioned)"}
    return {"help": kind}


def _segmenter_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("masks")
    group.add_argument(
        "--segmenter",
        choices=("grabcut", "sam"),
        default="grabcut",
        help="grabcut (default, no weights) or sam (needs --sam and sphinx-apps[sam])",
    )
    group.add_argument("--sam", metavar="DIR", help="a transformers SAM / SAM-HQ / SAM 2 folder")


def _inpainter_options(parser: argparse.ArgumentParser, default: str) -> None:
    group = parser.add_argument_group("painting")
    group.add_argument(
        "--inpainter",
        choices=("telea", "lama", "diffusion"),
        default=default,
        help=f"telea (no weights), lama (--lama FILE) or diffusion (--diffusion DIR); default {default}",
    )
    group.add_argument(
        "--lama", metavar="FILE", help="big-lama TorchScript file (sphinx-apps[lama])"
    )
    group.add_argument(
        "--diffusion",
        metavar="DIR",
        help="diffusers inpainting pipeline folder (sphinx-apps[diffusion])",
    )
    group.add_argument("--steps", type=int, default=30, help="diffusion steps (default 30)")
    group.add_argument("--seed", type=int, default=0, help="diffusion seed (default 0)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="SPHINX applications on one image: referred segmentation, object removal, "
        "prompted editing, dense captions, detection-guided answers, referring pose.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('sphinx-apps')}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    seg = command("segment", "mask the object(s) a phrase refers to")
    _common(seg, 'what to segment, e.g. "the dog on the left"', False)
    _segmenter_options(seg)
    rem = command("remove", "erase the object(s) a phrase refers to")
    _common(rem, "what to remove", False)
    _segmenter_options(rem)
    _inpainter_options(rem, "telea")
    rem.add_argument(
        "--dilate", type=int, default=15, help="grow the mask by PX pixels (default 15)"
    )
    edi = command(
        "edit", "repaint the object (or, with --background, everything else) from a prompt"
    )
    _common(edi, "what to edit", False)
    _segmenter_options(edi)
    _inpainter_options(edi, "diffusion")
    edi.add_argument("--prompt", required=True, help='what to paint, e.g. "a red fox"')
    edi.add_argument(
        "--background", action="store_true", help="keep the object and repaint its surroundings"
    )
    edi.add_argument("--dilate", type=int, default=5, help="grow the object mask by PX (default 5)")
    dense = command("dense-caption", "describe every object, its crop, and the whole image")
    _common(dense, "optional", True)
    reason = command("reason", "detect objects first, then answer a question with them in context")
    _common(reason, "the question", True)
    pose = command("pose", "keypoints of the person a phrase refers to")
    _common(pose, 'which person, e.g. "the man in red"', True)
    return parser


def _progress(step: str) -> None:
    print(f"{PROG}: {step} ...", file=sys.stderr, flush=True)


def _model(args):
    if args.model is None:
        return None
    from ._extras import require

    sphinx_train = require("sphinx_train", "sphinx", "--model")
    _progress(f"loading SPHINX from {args.model}")
    return sphinx_train.SphinxModel.from_pretrained(args.model).to(args.device).eval()


def _grounder(args, model):
    from .grounding import BoxesGrounder, SphinxGrounder

    if args.box:
        return BoxesGrounder(args.box)
    if model is None:
        raise ValueError("give --box x1,y1,x2,y2 or --model DIR (a SPHINX folder) to find regions")
    mode = "detect" if args.detect else "refer"
    return SphinxGrounder(model, mode=mode, max_new_tokens=args.max_new_tokens)


def _segmenter(args):
    from .grabcut import GrabCutSegmenter

    if args.segmenter == "grabcut":
        return GrabCutSegmenter()
    if args.sam is None:
        raise ValueError("--segmenter sam needs --sam DIR (a transformers SAM folder)")
    from .sam import SamSegmenter

    _progress(f"loading SAM from {args.sam}")
    return SamSegmenter(args.sam, device=args.device)


def _inpainter(args):
    if args.inpainter == "telea":
        from .telea import TeleaInpainter

        return TeleaInpainter()
    if args.inpainter == "lama":
        if args.lama is None:
            raise ValueError("--inpainter lama needs --lama FILE (a big-lama TorchScript file)")
        from .lama import LamaInpainter

        _progress(f"loading LaMa from {args.lama}")
        return LamaInpainter(args.lama, device=args.device)
    if args.diffusion is None:
        raise ValueError(
            "--inpainter diffusion needs --diffusion DIR (a diffusers pipeline folder)"
        )
    from .diffusion import DiffusionInpainter

    _progress(f"loading the diffusion pipeline from {args.diffusion}")
    return DiffusionInpainter(args.diffusion, device=args.device, steps=args.steps, seed=args.seed)


def _run(args) -> int:
    from . import recipes
    from ._house import check_output
    from .images import load_rgb

    inputs = [path for path in (args.image, args.model, getattr(args, "sam", None)) if path]
    check_output(args.out, inputs, overwrite=args.overwrite)  # fail before any model loads
    image = load_rgb(args.image)
    model = _model(args)
    grounder = (
        _grounder(args, model)
        if args.box or args.command in ("segment", "remove", "edit", "pose")
        else None
    )
    generation = {"max_new_tokens": args.max_new_tokens}
    if args.command == "segment":
        result = recipes.segment(image, args.phrase, grounder, _segmenter(args), progress=_progress)
    elif args.command == "remove":
        result = recipes.remove(
            image,
            args.phrase,
            grounder,
            _segmenter(args),
            _inpainter(args),
            dilation=args.dilate,
            progress=_progress,
        )
    elif args.command == "edit":
        keep = "object" if args.background else "background"
        result = recipes.edit(
            image,
            args.phrase,
            args.prompt,
            grounder,
            _inpainter(args),
            _segmenter(args),
            keep=keep,
            dilation=args.dilate,
            progress=_progress,
        )
    else:
        if model is None:
            raise ValueError(f"{args.command} needs --model DIR (a SPHINX folder)")
        if args.command == "dense-caption":
            result = recipes.dense_caption(image, model, grounder, progress=_progress, **generation)
        elif args.command == "reason":
            result = recipes.reason_with_detections(
                image, args.phrase, model, grounder, progress=_progress, **generation
            )
        else:
            result = recipes.referring_pose(
                image, args.phrase, model, grounder, progress=_progress, **generation
            )
    result.save(args.out, inputs, overwrite=args.overwrite)
    print(f"{PROG}: wrote {args.out}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ._extras import MissingExtraError

    return run_cli(PROG, lambda: _run(args), (ValueError, OSError, MissingExtraError))


if __name__ == "__main__":
    sys.exit(main())
