"""Task instructions with the reference wording (SPHINX paper, Table 1) and answer builders.

The benchmark prompts of the reference evaluation
(``accessory/eval_mm/annotations/annotation_config.json``) are registered under the reference's
dataset names: ``get_instruction("vizwiz_val").format(question)`` gives the exact question text,
and ``answer_prefix`` is what the reference appends after the open ``" Assistant:"`` turn.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ._house import Registry
from .geometry import Box, Keypoints
from .textformat import Detection, format_box, format_boxes, format_detections, format_keypoints

SHORT_ANSWER = "Answer the question using a single word or phrase."
CHOICE_ANSWER = "Answer with the option's letter from the given choices directly."
UNANSWERABLE_HINT = "When the provided information is insufficient, respond with 'Unanswerable'."
DETECT_ALL = "Detect all objects shown in the image."
DETECT_PEOPLE = "Detect all people shown in the image."
DETECT_TEXTS = "Detect all texts and provide their bounding box coordinate."
GROUNDED_CAPTION = (
    "Describe the image concisely. Include the bounding box for each mentioned object."
)
SHORT_CAPTION = "Provide a one-sentence caption for the provided image."
DETAILED_CAPTION = "Generate a detailed description about the image."
CLASSIFY = "Classify the image."


def rec_instruction(description: str) -> str:
    """Referring expression comprehension: find the region a phrase describes."""
    return f"Please provide the bounding box coordinate of the region this sentence describes: {description}."


def reg_instruction(box: Box) -> str:
    """Referring expression generation: describe a region."""
    return f"Please provide a short description for this region: {format_box(box)}"


def detect_all_instruction() -> str:
    return DETECT_ALL


def detect_category_instruction(category: str) -> str:
    return f"Detect all {category} shown in the image."


def detect_people_instruction() -> str:
    return DETECT_PEOPLE


def keypoints_in_region_instruction(box: Box) -> str:
    return f"Detect the key points of the person in the region {format_box(box)}."


def layout_instruction() -> str:
    return DETECT_TEXTS


def grounded_caption_instruction() -> str:
    return GROUNDED_CAPTION


def relation_instruction(subject: Box, obj: Box) -> str:
    return (
        f"What is the relationship between the object in {format_box(subject)} "
        f"and the object in {format_box(obj)}?"
    )


def short_vqa_instruction(question: str) -> str:
    """VQAv2, GQA, OK-VQA, VSR, MME, OCR-VQA."""
    return f"{question}\n{SHORT_ANSWER}"


def option_letters(count: int) -> list[str]:
    if not 0 < count <= 26:
        raise ValueError(f"between 1 and 26 options are supported, got {count}")
    return list(string.ascii_uppercase[:count])


def format_options(options: Sequence[str]) -> str:
    """``A. first\\nB. second ...``"""
    return "\n".join(
        f"{letter}. {option}"
        for letter, option in zip(option_letters(len(options)), options, strict=True)
    )


def multiple_choice_instruction(question: str, options: Sequence[str]) -> str:
    """SEED, ScienceQA, IconVQA: question, lettered options, then the reference instruction."""
    return f"{question}\n{format_options(options)}\n{CHOICE_ANSWER}"


def mmbench_instruction(question: str, options: Sequence[str]) -> str:
    """MMBench and CCBench: the options follow "There are several options:"."""
    return f"{question}\nThere are several options: {format_options(options)}"


def textvqa_instruction(question: str, ocr_tokens: Iterable[str]) -> str:
    return f"{question}\nReference OCR token: {', '.join(ocr_tokens)}\n{SHORT_ANSWER}"


def vizwiz_instruction(question: str) -> str:
    """The training converters' form (a newline before the hint); the reference evaluation puts
    a space there instead: ``get_instruction("vizwiz_val")``."""
    return f"{question}\n{UNANSWERABLE_HINT}\n{SHORT_ANSWER}"


def short_caption_instruction() -> str:
    return SHORT_CAPTION


def detailed_caption_instruction() -> str:
    return DETAILED_CAPTION


def classification_instruction() -> str:
    return CLASSIFY


def boxes_answer(boxes: Iterable[Box]) -> str:
    """Answer to REC: the box (or boxes) of the one object referred to."""
    return format_boxes(boxes)


def detections_answer(detections: Iterable[Detection | tuple[str, Sequence[Box]]]) -> str:
    return format_detections(detections)


def keypoints_answer(keypoints: Keypoints) -> str:
    return format_keypoints(keypoints)


def classification_answer(class_name: str) -> str:
    return f"This is a {class_name}"


@dataclass(frozen=True)
class Instruction:
    """A benchmark prompt: ``text`` with one ``{}`` for the question, and the text the reference
    puts at the start of the answer (after the generation prompt)."""

    text: str
    answer_prefix: str = ""

    def __post_init__(self) -> None:
        if self.text.count("{}") != 1:
            raise ValueError(f"instruction {self.text!r}: expected exactly one '{{}}'")

    def format(self, question: str) -> str:
        return self.text.replace("{}", question, 1)


_INSTRUCTIONS: Registry[Instruction] = Registry("instruction")


def register_instruction(
    name: str, instruction: Instruction, overwrite: bool = False
) -> Instruction:
    """Make a benchmark prompt available to :func:`get_instruction` under ``name``."""
    if not isinstance(instruction, Instruction):
        raise TypeError(f"instruction {name!r}: expected an Instruction")
    return _INSTRUCTIONS.register(name, instruction, overwrite=overwrite)


def get_instruction(name: str) -> Instruction:
    """The prompt registered under ``name``; an unknown name lists the known ones."""
    return _INSTRUCTIONS.get(name)


def list_instructions(pattern: str | None = None) -> list[str]:
    """Registered prompt names, optionally filtered by a glob such as ``"refcoco*"``."""
    return _INSTRUCTIONS.names(pattern)


# ScienceQA's questions in the reference annotations already hold the context, the lettered
# choices and the suffix 'Answer with the option"s letter ...' (with that quote), so its
# prompt is the question alone.
_SHORT = Instruction("{}\n" + SHORT_ANSWER)
_PLAIN = Instruction("{}")
_REFERENCE_PROMPTS = {
    **dict.fromkeys(
        (
            "mme",
            "okvqa_val",
            "gqa_testdev",
            "vqav2_val",
            "textvqa_val",
            "docvqa_val",
            "chartqa_test_human",
            "chartqa_test_augmented",
            "ocrvqa_val",
            "ai2diagram",
            "InfographicsVQA",
            "TabFact",
            "WikiTableQuestions",
        ),
        _SHORT,
    ),
    **dict.fromkeys(("vsr_val", "Qbench_dev", "DeepForm", "KleisterCharity", "VisualMRC"), _PLAIN),
    "vizwiz_val": Instruction(f"{{}} {UNANSWERABLE_HINT}\n{SHORT_ANSWER}"),
    "scienceqa_test": Instruction("{}", answer_prefix=" The answer is"),
    **dict.fromkeys(
        (
            "refcoco_testA",
            "refcoco_testB",
            "refcoco_val",
            "refcoco+_testA",
            "refcoco+_testB",
            "refcoco+_val",
            "refcocog_test",
            "refcocog_val",
        ),
        Instruction(
            "Please provide the bounding box coordinate of the region this sentence describes: {}."
        ),
    ),
}
for _name, _instruction in _REFERENCE_PROMPTS.items():
    register_instruction(_name, _instruction)
