"""Scorers against the official rules, transcribed here independently of the package."""

import math
import re
import time

import pytest

from sphinx_tasks import Box
from sphinx_tasks.metrics import (
    MmeItem,
    choice_accuracy,
    circular_accuracy,
    extract_choice,
    gqa_accuracy,
    mean_vqa_accuracy,
    mme_answer,
    mme_score,
    normalize_vqa_answer,
    pope_score,
    rec_score,
    reference_box,
    vqa_accuracy,
)

# ---------------------------------------------------------------- VQA: official vqaEval.py
# Transcribed from GT-Vision-Lab/VQA a013f00 (PythonEvaluationTools/vqaEvaluation/vqaEval.py).
CONTRACTIONS = {"dont": "don't", "isnt": "isn't", "whats": "what's", "Im": "I'm", "yall": "y'all"}
MANUAL = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
          "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}  # fmt: skip
ARTICLES = ["a", "an", "the"]
PERIOD = re.compile(r"(?!<=\d)(\.)(?!\d)")
COMMA = re.compile(r"(\d)(\,)(\d)")
PUNCT = [";", r"/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@",
         "`", ",", "?", "!"]  # fmt: skip


def official_punct(text):
    out = text
    for p in PUNCT:
        if (p + " " in text or " " + p in text) or (re.search(COMMA, text) is not None):
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return PERIOD.sub("", out, re.UNICODE)


def official_digit_article(text):
    words = [MANUAL.get(w, w) for w in text.lower().split()]
    words = [w for w in words if w not in ARTICLES]
    return " ".join(CONTRACTIONS.get(w, w) for w in words)


def clean(text):
    return text.replace("\n", " ").replace("\t", " ").strip()


def official_vqa(prediction, answers):
    gts = [clean(a) for a in answers]
    res = clean(prediction)
    if len(set(gts)) > 1:
        gts = [official_digit_article(official_punct(a)) for a in gts]
        res = official_digit_article(official_punct(res))
    accs = []
    for i in range(len(gts)):
        others = [a for j, a in enumerate(gts) if j != i]
        accs.append(min(1, float(sum(a == res for a in others)) / 3))
    return sum(accs) / len(accs)


def accessory_vqa(prediction, answers):
    # LLaMA2-Accessory accessory/eval_mm/utils/vqa_eval.py: prediction always fully
    # normalised, humans only punctuation-normalised and only when they disagree.
    res = official_digit_article(official_punct(clean(prediction)))
    gts = list(answers)
    if len(set(gts)) > 1:
        gts = [official_punct(a) for a in gts]
    accs = [min(1, sum(a == res for j, a in enumerate(gts) if j != i) / 3) for i in range(len(gts))]
    return sum(accs) / len(accs)


def lmms_vqa(prediction, answers):
    # lmms-eval tasks/vqav2/utils.py: both sides always normalised, comma test (?<=\d)(\,)+(?=\d)
    comma = re.compile(r"(?<=\d)(\,)+(?=\d)")

    def punct(text):
        out = text
        for p in PUNCT:
            if (p + " " in text or " " + p in text) or comma.search(text) is not None:
                out = out.replace(p, "")
            else:
                out = out.replace(p, " ")
        return PERIOD.sub("", out, re.UNICODE)

    res = official_digit_article(punct(clean(prediction)))
    gts = [official_digit_article(punct(clean(a))) for a in answers]
    accs = [min(1, sum(a == res for j, a in enumerate(gts) if j != i) / 3) for i in range(len(gts))]
    return sum(accs) / len(accs)


TRICKY = [
    ("dog's", ["dog's"] * 10),
    ("dog's", ["dog's"] * 9 + ["dog"]),
    ("dont", ["don't"] * 6 + ["do not"] * 4),
    ("don't", ["don't"] * 10),
    ("10:30", ["10:30"] * 7 + ["1030"] * 3),
    ("t-shirt", ["t-shirt"] * 5 + ["t shirt"] * 5),
    ("t shirt", ["t-shirt"] * 5 + ["tshirt"] * 5),
    ("yes!", ["yes"] * 9 + ["yes!"]),
    ("yes!", ["yes"] * 10),
    ("Yes.", ["yes"] * 10),
    ("Yes.", ["yes"] * 9 + ["no"]),
    ("{red}", ["red"] * 8 + ["blue"] * 2),
    ("none", ["0"] * 4 + ["zero"] * 6),
    ("Two", ["2"] * 3 + ["3"] * 7),
    ("the dog", ["dog"] * 3 + ["a dog"] * 7),
    ("1,000", ["1000"] * 5 + ["1,000"] * 5),
    ("1,,000", ["1000"] * 5 + ["1,,000"] * 5),
    ("3.5", ["3.5"] * 6 + ["35"] * 4),
    ("left/right", ["left right"] * 4 + ["left"] * 6),
    ("  red\n", ["red"] * 10),
    ("red", [" red", "red"] + ["blue"] * 8),
    ("whats up", ["what's up"] * 5 + ["up"] * 5),
    ("a.b.c", ["abc"] * 5 + ["a b c"] * 5),
    ("fish", ["cat"] * 2 + ["dog"] * 8),
    ("cat", ["cat"] * 2 + ["dog"] * 8),
]


@pytest.mark.parametrize(("prediction", "answers"), TRICKY)
def test_vqa_variants_match_their_scripts(prediction, answers):
    assert vqa_accuracy(prediction, answers) == pytest.approx(official_vqa(prediction, answers))
    assert vqa_accuracy(prediction, answers, variant="accessory") == pytest.approx(
        accessory_vqa(prediction, answers)
    )
    assert vqa_accuracy(prediction, answers, variant="lmms-eval") == pytest.approx(
        lmms_vqa(prediction, answers)
    )


def test_vqa_hand_computed():
    # Unanimous humans: compared as written, so an exact "dog's" is right (the 2015 beta
    # stripped the apostrophe from the prediction only and scored it 0).
    assert vqa_accuracy("dog's", ["dog's"] * 10) == 1.0
    assert vqa_accuracy("Yes.", ["yes"] * 10) == 0.0  # no normalisation when unanimous
    assert vqa_accuracy("Yes.", ["yes"] * 10, variant="accessory") == 1.0
    # 2 of 10 humans: two subsets see 1 match (1/3), eight see 2 (2/3) -> 0.6
    assert vqa_accuracy("cat", ["cat", "cat"] + ["dog"] * 8) == pytest.approx(0.6)
    assert vqa_accuracy("two", ["2"] * 3 + ["3"] * 7) == pytest.approx(0.9)
    assert mean_vqa_accuracy(["yes", "no"], [["yes"] * 10, ["yes"] * 10]) == 0.5
    with pytest.raises(ValueError, match="variant"):
        vqa_accuracy("a", ["a"], variant="beta")


def test_vqa_normalisation_rules():
    assert normalize_vqa_answer("Two") == "2"
    assert normalize_vqa_answer("an apple.") == "apple"
    assert normalize_vqa_answer("1,000") == "1000"
    assert normalize_vqa_answer("dog's") == "dog's"
    assert normalize_vqa_answer("10:30") == "10:30"
    assert normalize_vqa_answer("dont") == "don't"
    # the periodStrip "count" quirk: re.UNICODE (32) passed as count -> only 32 periods go
    assert normalize_vqa_answer("." * 40) == "." * 8


def test_gqa_llava_conversion():
    # LLaVA: prediction.rstrip('.').lower() == answer, nothing else
    assert gqa_accuracy(["Yes.", "left", "the table", " no"], ["yes", "right", "table", "no"]) == (
        0.25
    )


# ---------------------------------------------------------------- POPE / MME
def test_pope_hand_computed():
    predictions = ["Yes, there is.", "No.", "There is not a dog.", "yes", "I think so", "no"]
    labels = ["yes", "yes", "no", "no", "yes", "no"]
    score = pope_score(predictions, labels)  # read: yes, no, no, yes, yes, no
    assert score.accuracy == pytest.approx(4 / 6)
    assert score.precision == pytest.approx(2 / 3)
    assert score.recall == pytest.approx(2 / 3)
    assert score.yes_ratio == pytest.approx(3 / 6)  # of the predictions, not the labels
    assert pope_score(["no"] * 3, ["yes"] * 3).yes_ratio == 0.0
    with pytest.raises(ValueError, match="label 0"):
        pope_score(["yes"], ["maybe"])


def official_mme(text):
    # MME eval_tool/calculation.py parse_pred_ans after .lower()
    text = text.lower()
    if text in ["yes", "no"]:
        return text
    return "yes" if "yes" in text[:4] else "no" if "no" in text[:4] else "other"


def lmms_mme(text):
    text = text.lower().strip().replace(".", "")
    if text in ["yes", "no"]:
        return text
    if len(text) == 1:
        return {"y": "yes", "n": "no"}.get(text, "other")
    return "yes" if "yes" in text[:4] else "no" if "no" in text[:4] else "other"


@pytest.mark.parametrize(
    "text", ["Yes", "  yes", "...no", "No.", "not sure", "y", "N", "The answer is yes", "\nno", ""]
)
def test_mme_reading(text):
    assert mme_answer(text) == official_mme(text)
    assert mme_answer(text, variant="lmms-eval") == lmms_mme(text)


def test_mme_flip_changes_the_subtask_score():
    items = [MmeItem("count", f"{i}.jpg", answer, label)
             for i in range(2) for answer, label in (("  yes", "Yes"), ("...no", "No"))]  # fmt: skip
    assert mme_score(items).subtasks["count"] == 0.0  # both read as 'other'
    assert mme_score(items, variant="lmms-eval").subtasks["count"] == 200.0


def test_mme_scores():
    items = [
        MmeItem("existence", "a.jpg", "Yes", "Yes"),
        MmeItem("existence", "a.jpg", "No", "No"),
        MmeItem("existence", "b.jpg", "Yes", "Yes"),
        MmeItem("existence", "b.jpg", "Yes", "No"),
        MmeItem("code_reasoning", "c.png", "Maybe", "Yes"),
        MmeItem("code_reasoning", "c.png", "no", "No"),
    ]
    score = mme_score(items)  # existence 75 + 50; code 50 + 0
    assert score.subtasks == pytest.approx({"existence": 125.0, "code_reasoning": 50.0})
    assert (score.perception, score.cognition) == pytest.approx((125.0, 50.0))


# ---------------------------------------------------------------- REC
def reference_parse(answer):
    # accessory/eval_mm/evaluate.py, metric "miou0.5"
    found = re.findall(re.compile(r"\[(.*?)\]"), answer)
    if found == []:
        found = [answer.split("]")[0]]
    try:
        parts = found[0].split(",")
        return (0.0,) * 4 if len(parts) != 4 else tuple(float(p) for p in parts)
    except Exception:
        return (0.0,) * 4


@pytest.mark.parametrize(
    "answer",
    [
        "[0.1,0.2,0.3,0.4]",
        "0.1,0.2,0.3,0.4",  # no brackets: the split(']') fallback reads it
        "0.1,0.2,0.3,0.4] tail",
        "[[0.1,0.2,0.3,0.4]]",  # nested: "[0.1" is not a float
        "[0.1,0.2,\n0.3,0.4]",  # newline inside: no match without DOTALL, fallback fails
        "a [0.1,0.2] then [0.1,0.2,0.3,0.4]",  # the first pair only
        "[ 0.1 , 0.2 , 0.3 , 0.4 ]",
        "[0.1,0.2,0.3]",
        "",
        "[nan,0,1,1]",
    ],
)
def test_reference_box_parse(answer):
    expected, got = reference_parse(answer), reference_box(answer)
    assert len(got) == 4
    assert all((math.isnan(a) and math.isnan(b)) or a == b for a, b in zip(got, expected, strict=True))


def test_rec_scores_in_the_padded_square():
    sizes = [(200, 100)] * 4
    targets = [Box(0, 0, 100, 50)] * 4  # in the 200-px square: (0, 50, 100, 100)
    answers = [
        "[0.00,0.25,0.50,0.50]",  # IoU 1
        "[0.00,0.25,0.25,0.50]",  # IoU 0.5
        "<p>x</p> [0.00, 0.25, 0.50, 0.50",  # only the robust parse reads it
        "[0.00,0.25,0.50,0.375]",  # IoU 0.5 (half height)
    ]
    strict = rec_score(answers, targets, sizes)
    assert strict.ious == pytest.approx([1.0, 0.5, 0.0, 0.5])
    assert strict.accuracy == pytest.approx(3 / 4)
    assert strict.accuracy_at[0.6] == pytest.approx(1 / 4)
    assert strict.accuracy_at[0.1] == pytest.approx(3 / 4)
    assert strict.mean_iou == pytest.approx(0.5)
    robust = rec_score(answers, targets, sizes, parse="robust", threshold=0.75)
    assert robust.ious == pytest.approx([1.0, 0.5, 1.0, 0.5])


def test_rec_float32_threshold():
    # IoU of exactly 0.5 in real numbers that float64 puts just below 0.5 and float32 at 0.5:
    # 0.1 * 3 in float64 is 0.30000000000000004; torch (float32) gives 0.5 and counts a hit.
    import struct

    def f32(x):
        return struct.unpack("f", struct.pack("f", x))[0]

    side = 100
    box = f"[0.0,0.0,{0.1 * 3},1.0]"
    target = Box(0, 0, 60, 100)
    pred_x2 = f32(f32(0.1 * 3) * side)
    expected = f32(f32(pred_x2 * 100.0) / f32(6000.0 + f32(pred_x2 * 100.0) - f32(pred_x2 * 100)))
    score = rec_score([box], [target], [(side, side)])
    assert score.ious[0] == pytest.approx(expected, abs=0)


# ---------------------------------------------------------------- multiple choice
@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("B", "B"),
        ("(C) a dog", "C"),
        ("D. The red one", "D"),
        ("The answer is A.", "A"),
        ("I pick option (B)", "B"),
        ("dog", "B"),
        ("A dog", "B"),  # the article is not option A; the text is option B
        ("B dog", "B"),
        ("C dog", None),
        ("none of them", None),
        ("E", None),  # beyond the 4 options
        (" The answer is C.", "C"),
    ],
)
def test_extract_choice(answer, expected):
    assert extract_choice(answer, ["cat", "dog", "bird", "fish"]) == expected


def reference_letter(answer):
    # accessory/eval_mm/evaluate.py, metric "accuracy" (before its random fallback)
    head = answer.split(".")[0]
    return head if head in ["A", "B", "C", "D", "E"] else None


@pytest.mark.parametrize("answer", ["B", "B.", "E", "E. fish", "(B)", " B", "A dog", "b"])
def test_extract_choice_accessory(answer):
    assert extract_choice(answer, ["cat", "dog"], variant="accessory") == reference_letter(answer)


def test_extract_choice_is_linear():
    def seconds(n):
        start = time.perf_counter()
        extract_choice("answer" + " " * n)
        extract_choice("(" * n)
        return time.perf_counter() - start

    small, large = seconds(100_000), seconds(1_000_000)
    assert large < 1.0
    assert large / max(small, 1e-4) < 30  # 10x the input, linear: ~10x the time


def test_choice_and_circular_accuracy():
    assert choice_accuracy(["A", "b) x", "C."], ["A", "B", "D"]) == pytest.approx(1 / 3)
    # question 1 right in all 3 rotations, question 2 wrong once -> 1/2
    assert circular_accuracy([1, 1, 1, 2, 2, 2], [True, True, True, True, False, True]) == 0.5
