"""VQA accuracy (VQAv2, OKVQA, TextVQA, VizWiz) by the official rule and its known variants.

``variant="official"`` follows the current GT-Vision-Lab/VQA ``vqaEval.py``: answers are
normalised (punctuation, number words, articles, contractions) only when the human answers
disagree, and then the prediction too. ``"accessory"`` is the copy SPHINX was scored with:
the prediction is always fully normalised, the humans only punctuation-normalised when they
disagree. ``"lmms-eval"`` normalises both sides fully, always, with a looser digit-comma test.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ._variants import check_variant

VQA_VARIANTS = ("official", "accessory", "lmms-eval")

# The evaluator's contraction table (plain apostrophes), as "without=with" pairs.
_CONTRACTIONS = dict(
    pair.split("=", 1)
    for pair in """
aint=ain't arent=aren't cant=can't couldve=could've couldnt=couldn't couldn'tve=couldn't've
couldnt've=couldn't've didnt=didn't doesnt=doesn't dont=don't hadnt=hadn't hadnt've=hadn't've
hadn'tve=hadn't've hasnt=hasn't havent=haven't hed=he'd hed've=he'd've he'dve=he'd've hes=he's
howd=how'd howll=how'll hows=how's Id've=I'd've I'dve=I'd've Im=I'm Ive=I've isnt=isn't itd=it'd
itd've=it'd've it'dve=it'd've itll=it'll let's=let's maam=ma'am mightnt=mightn't
mightnt've=mightn't've mightn'tve=mightn't've mightve=might've mustnt=mustn't mustve=must've
neednt=needn't notve=not've oclock=o'clock oughtnt=oughtn't ow's'at='ow's'at 'ows'at='ow's'at
'ow'sat='ow's'at shant=shan't shed've=she'd've she'dve=she'd've she's=she's shouldve=should've
shouldnt=shouldn't shouldnt've=shouldn't've shouldn'tve=shouldn't've somebody'd=somebodyd
somebodyd've=somebody'd've somebody'dve=somebody'd've somebodyll=somebody'll somebodys=somebody's
someoned=someone'd someoned've=someone'd've someone'dve=someone'd've someonell=someone'll
someones=someone's somethingd=something'd somethingd've=something'd've
something'dve=something'd've somethingll=something'll thats=that's thered=there'd
thered've=there'd've there'dve=there'd've therere=there're theres=there's theyd=they'd
theyd've=they'd've they'dve=they'd've theyll=they'll theyre=they're theyve=they've twas='twas
wasnt=wasn't wed've=we'd've we'dve=we'd've weve=we've werent=weren't whatll=what'll whatre=what're
whats=what's whatve=what've whens=when's whered=where'd wheres=where's whereve=where've whod=who'd
whod've=who'd've who'dve=who'd've wholl=who'll whos=who's whove=who've whyll=why'll whyre=why're
whys=why's wont=won't wouldve=would've wouldnt=wouldn't wouldnt've=wouldn't've
wouldn'tve=wouldn't've yall=y'all yall'll=y'all'll y'allll=y'all'll yall'd've=y'all'd've
y'alld've=y'all'd've y'all'dve=y'all'd've youd=you'd youd've=you'd've you'dve=you'd've
youll=you'll youre=you're youve=you've
""".split()  # noqa: SIM905
)
_NUMBER_WORDS = dict(
    zip(
        ["none", "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"],
        ["0", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"],
        strict=True,
    )
)
_ARTICLES = frozenset({"a", "an", "the"})
# Note: no apostrophe and no colon; "dog's" and "10:30" stay as written.
_PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<",
                "@", "`", ",", "?", "!")  # fmt: skip
# The official pattern, typo included: "(?!<=\d)" is a look-ahead that always holds, so any
# period not followed by a digit goes; leaderboard numbers were computed with it.
_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
# The evaluator passes re.UNICODE (32) as ``sub``'s third positional argument: a count.
_PERIOD_STRIP_COUNT = int(re.UNICODE)
_DIGIT_COMMA_DIGIT = {
    "official": re.compile(r"(\d)(\,)(\d)"),
    "accessory": re.compile(r"(\d)(,)(\d)"),
    "lmms-eval": re.compile(r"(?<=\d)(\,)+(?=\d)"),
}


def normalize_punctuation(text: str, variant: str = "official") -> str:
    """A mark next to a space (or any mark in text with a 1,000-style number) is deleted,
    other marks become a space; then periods not before a digit are deleted."""
    check_variant(variant, VQA_VARIANTS)
    out = text
    digit_comma = _DIGIT_COMMA_DIGIT[variant].search(text) is not None
    for mark in _PUNCTUATION:
        if mark + " " in text or " " + mark in text or digit_comma:
            out = out.replace(mark, "")
        else:
            out = out.replace(mark, " ")
    return _PERIOD_STRIP.sub("", out, _PERIOD_STRIP_COUNT)


def normalize_digits_articles(text: str) -> str:
    """Lower-case, number words to digits, drop articles, then restore contractions."""
    words = [_NUMBER_WORDS.get(word, word) for word in text.lower().split()]
    return " ".join(_CONTRACTIONS.get(word, word) for word in words if word not in _ARTICLES)


def _clean(text: str) -> str:
    return text.replace("\n", " ").replace("\t", " ").strip()


def normalize_vqa_answer(text: str, variant: str = "official") -> str:
    """The full normalisation (whitespace, punctuation, digits, articles, contractions)."""
    return normalize_digits_articles(normalize_punctuation(_clean(text), variant))


def vqa_accuracy(prediction: str, human_answers: Sequence[str], variant: str = "official") -> float:
    """Mean over each human answer left out of min(1, matching other humans / 3)."""
    check_variant(variant, VQA_VARIANTS)
    if not human_answers:
        raise ValueError("vqa_accuracy needs at least one human answer")
    humans = [_clean(answer) for answer in human_answers]
    predicted = _clean(prediction)
    disagree = len(set(humans)) > 1
    if variant == "official":
        if disagree:
            humans = [normalize_vqa_answer(answer) for answer in humans]
            predicted = normalize_vqa_answer(predicted)
    elif variant == "accessory":
        # The copy cleans the humans' whitespace not at all; ours is a no-op on real data.
        humans = [normalize_punctuation(a, variant) for a in human_answers] if disagree else list(
            human_answers
        )
        predicted = normalize_vqa_answer(predicted, variant)
    else:
        humans = [normalize_vqa_answer(answer, variant) for answer in humans]
        predicted = normalize_vqa_answer(predicted, variant)
    total = 0.0
    for left_out in range(len(humans)):
        matches = sum(1 for i, answer in enumerate(humans) if i != left_out and answer == predicted)
        total += min(1.0, matches / 3)
    return total / len(humans)


def mean_vqa_accuracy(
    predictions: Sequence[str], human_answers: Sequence[Sequence[str]], variant: str = "official"
) -> float:
    if len(predictions) != len(human_answers):
        raise ValueError(f"{len(predictions)} predictions but {len(human_answers)} answer lists")
    if not predictions:
        return 0.0
    scores = [vqa_accuracy(p, a, variant) for p, a in zip(predictions, human_answers, strict=True)]
    return sum(scores) / len(scores)


def gqa_exact_match(prediction: str, answer: str) -> bool:
    """GQA as LLaVA converts it: ``prediction.rstrip('.').lower()`` equals the answer."""
    return prediction.rstrip(".").lower() == answer


def gqa_accuracy(predictions: Sequence[str], answers: Sequence[str]) -> float:
    if len(predictions) != len(answers):
        raise ValueError(f"{len(predictions)} predictions but {len(answers)} answers")
    if not predictions:
        return 0.0
    return sum(map(gqa_exact_match, predictions, answers)) / len(predictions)
