import pytest

from sphinx_tasks import Box, Keypoints, Point, UnknownNameError
from sphinx_tasks import instructions as ins


def test_reference_wording():
    box = Box(0.1, 0.2, 0.3, 0.4)
    other = Box(0.5, 0.5, 0.9, 0.95)
    assert ins.rec_instruction("the red car") == (
        "Please provide the bounding box coordinate of the region this sentence describes: the red car."
    )
    assert ins.reg_instruction(box) == (
        "Please provide a short description for this region: [0.10,0.20,0.30,0.40]"
    )
    assert ins.detect_all_instruction() == "Detect all objects shown in the image."
    assert ins.detect_category_instruction("dog") == "Detect all dog shown in the image."
    assert ins.detect_people_instruction() == "Detect all people shown in the image."
    assert ins.keypoints_in_region_instruction(box) == (
        "Detect the key points of the person in the region [0.10,0.20,0.30,0.40]."
    )
    assert ins.layout_instruction() == "Detect all texts and provide their bounding box coordinate."
    assert ins.grounded_caption_instruction() == (
        "Describe the image concisely. Include the bounding box for each mentioned object."
    )
    assert ins.relation_instruction(box, other) == (
        "What is the relationship between the object in [0.10,0.20,0.30,0.40] and the object in "
        "[0.50,0.50,0.90,0.95]?"
    )
    assert ins.short_vqa_instruction("What color?") == (
        "What color?\nAnswer the question using a single word or phrase."
    )
    assert (
        ins.short_caption_instruction() == "Provide a one-sentence caption for the provided image."
    )
    assert ins.detailed_caption_instruction() == "Generate a detailed description about the image."
    assert ins.classification_instruction() == "Classify the image."
    assert ins.classification_answer("tabby cat") == "This is a tabby cat"


def test_choice_and_ocr_instructions():
    assert ins.multiple_choice_instruction("Which?", ["cat", "dog"]) == (
        "Which?\nA. cat\nB. dog\nAnswer with the option's letter from the given choices directly."
    )
    assert ins.mmbench_instruction("Which?", ["cat", "dog"]) == (
        "Which?\nThere are several options: A. cat\nB. dog"
    )
    assert ins.textvqa_instruction("Brand?", ["nikon", "d50"]) == (
        "Brand?\nReference OCR token: nikon, d50\nAnswer the question using a single word or phrase."
    )
    assert ins.vizwiz_instruction("What is it?") == (
        "What is it?\nWhen the provided information is insufficient, respond with 'Unanswerable'.\n"
        "Answer the question using a single word or phrase."
    )


def test_answer_builders():
    assert ins.boxes_answer([Box(0, 0, 0.5, 0.5), Box(0.5, 0.5, 1, 1)]) == (
        "[0.00,0.00,0.50,0.50;0.50,0.50,1.00,1.00]"
    )
    assert ins.detections_answer(
        [("dog", [Box(0.1, 0.1, 0.2, 0.2)]), ("cat", [Box(0, 0, 1, 1)])]
    ) == ("<p>dog</p> [0.10,0.10,0.20,0.20] <p>cat</p> [0.00,0.00,1.00,1.00]")
    points = Keypoints({"left_eye": Point(0.3, 0.2), "nose": Point(0.25, 0.3)})
    assert ins.keypoints_answer(points) == "<p>nose</p> [0.25,0.30] <p>left_eye</p> [0.30,0.20]"


# Transcribed from accessory/eval_mm/annotations/annotation_config.json ("prompt" of each set).
SHORT = "{}\nAnswer the question using a single word or phrase."
REC = "Please provide the bounding box coordinate of the region this sentence describes: {}."
REFERENCE_PROMPTS = {
    "mme": (SHORT, ""),
    "okvqa_val": (SHORT, ""),
    "gqa_testdev": (SHORT, ""),
    "vqav2_val": (SHORT, ""),
    "textvqa_val": (SHORT, ""),
    "vsr_val": ("{}", ""),
    "vizwiz_val": (
        "{} When the provided information is insufficient, respond with 'Unanswerable'.\n"
        "Answer the question using a single word or phrase.",
        "",
    ),
    "docvqa_val": (SHORT, ""),
    "chartqa_test_human": (SHORT, ""),
    "chartqa_test_augmented": (SHORT, ""),
    "ocrvqa_val": (SHORT, ""),
    "ai2diagram": (SHORT, ""),
    "Qbench_dev": ("{}", ""),
    "scienceqa_test": ("{}", " The answer is"),
    **{
        f"refcoco{variant}_{split}": (REC, "")
        for variant, splits in (
            ("", ("testA", "testB", "val")),
            ("+", ("testA", "testB", "val")),
            ("g", ("test", "val")),
        )
        for split in splits
    },
    "DeepForm": ("{}", ""),
    "InfographicsVQA": (SHORT, ""),
    "KleisterCharity": ("{}", ""),
    "TabFact": (SHORT, ""),
    "VisualMRC": ("{}", ""),
    "WikiTableQuestions": (SHORT, ""),
}


def test_reference_eval_prompts_under_the_reference_names():
    built_in = [name for name in ins.list_instructions() if not name.startswith("test-")]
    assert built_in == sorted(REFERENCE_PROMPTS)
    for name, (text, answer_prefix) in REFERENCE_PROMPTS.items():
        instruction = ins.get_instruction(name)
        assert instruction.format("Q {} ?") == text.format("Q {} ?"), name
        assert instruction.answer_prefix == answer_prefix, name


def test_vizwiz_reference_puts_a_space_before_the_hint():
    assert ins.get_instruction("vizwiz_val").format("What is it?") == (
        "What is it? When the provided information is insufficient, respond with "
        "'Unanswerable'.\nAnswer the question using a single word or phrase."
    )


def test_instruction_registry_idiom():
    assert ins.list_instructions("refcocog_*") == ["refcocog_test", "refcocog_val"]
    with pytest.raises(UnknownNameError, match="unknown instruction 'pope'; known: DeepForm"):
        ins.get_instruction("pope")
    mine = ins.Instruction("{}\nAnswer yes or no.")
    assert ins.register_instruction("test-pope", mine) is mine
    assert ins.get_instruction("test-pope").format("Is there a dog?") == (
        "Is there a dog?\nAnswer yes or no."
    )
    with pytest.raises(ValueError, match="already registered"):
        ins.register_instruction("test-pope", mine)
    with pytest.raises(ValueError, match="exactly one"):
        ins.Instruction("no placeholder")
