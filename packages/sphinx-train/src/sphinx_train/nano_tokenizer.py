"""A small byte-level BPE tokenizer for ``sphinx-nano``, trained at run time on built-in text.

Byte-level means any text round-trips; training on the template and task phrases keeps prompts
short. Training is deterministic and takes a fraction of a second, so nothing is downloaded
or shipped; a saved model carries its trained tokenizer in its folder.
"""

from __future__ import annotations

from sphinx_train.tokenizer import HuggingFaceTokenizer

NANO_VOCAB_SIZE = 512
SPECIAL_TOKENS = ("<unk>", "<s>", "</s>")
# One token, so the model can emit the stop string in a single step.
SEPARATOR = "###"

_CORPUS = """\
A chat between a curious human and an artificial intelligence assistant. The assistant gives
helpful, detailed, and polite answers to the human's questions.
### Human: What is in the image?
### Assistant: A cat sitting on a red chair next to a window.
### Human: Please provide the bounding box coordinate of the region this sentence describes: the dog.
### Assistant: [0.12,0.34,0.56,0.78]
### Human: Detect all objects shown in the image.
### Assistant: <p>person</p> [0.10,0.20,0.30,0.40;0.50,0.50,0.70,0.90] <p>car</p> [0.05,0.61,0.29,0.93]
### Human: Detect the key points of the person in the region [0.25,0.15,0.75,0.95].
### Assistant: nose [0.51,0.22] left_eye [0.53,0.20] right_eye [0.49,0.20] left_shoulder [0.60,0.35]
### Human: Answer the question using a single word or phrase.
### Assistant: Yes
### Human: Provide a one-sentence caption for the provided image.
### Assistant: Two people walk along the beach at sunset with their dog.
### Human: Generate a detailed description about the image.
### Assistant: The photo shows a busy street with shops, cars, bicycles and people.
Classify the image. This is a dog. What is the relationship between the object and the other
object? There are several options: A B C D. Answer with the option's letter from the given
choices directly. Reference OCR token: When the provided information is insufficient, respond
with 'Unanswerable'. Detect all texts and provide their bounding box coordinate. Describe the
image concisely. Include the bounding box for each mentioned object. Detect all people shown in
the image. Please provide a short description for this region: 0 1 2 3 4 5 6 7 8 9 0.00 0.25
0.50 0.75 1.00 the a an of in on with and is are was were it this that there here what where
who how why which color colour number many left right top bottom middle front back large small
"""
# The words of the synthetic scenes (sphinx_train.training.synthetic), weighted in the
# grounding vocabulary so that each becomes a single token.
_SCENE_WORDS = (
    "the small large red green blue yellow purple white square circle triangle shapes How many"
    " background stripes dots image shows one two three four left right top bottom"
)
_SCENE_WEIGHT = 20
# Every box coordinate SPHINX writes ("0.00" ... "1.00") as one token, for presets that ask.
COORDINATE_TOKENS = tuple(f"{hundredths / 100:.2f}" for hundredths in range(101))


def build_nano_tokenizer(grounding: bool = False) -> HuggingFaceTokenizer:
    """Train the nano tokenizer: ids 0, 1, 2 are <unk>, <s>, </s> as in LLaMA.

    ``grounding`` makes each word of the synthetic scenes one token and adds one token per
    box coordinate (``COORDINATE_TOKENS``, after the plain ids): a two-layer
    model then reads "the small red circle" as four tokens and picks a coordinate in one
    step instead of spelling it digit by digit. The text (SPHINX's box format) is unchanged.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=NANO_VOCAB_SIZE - 1,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    lines = _CORPUS.splitlines() + ([_SCENE_WORDS] * _SCENE_WEIGHT if grounding else [])
    backend.train_from_iterator(lines, trainer=trainer)
    backend.add_tokens([AddedToken(SEPARATOR, normalized=False, special=False)])
    if grounding:
        backend.add_tokens(
            [AddedToken(value, normalized=False, special=False) for value in COORDINATE_TOKENS]
        )
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    return HuggingFaceTokenizer(wrapped)
