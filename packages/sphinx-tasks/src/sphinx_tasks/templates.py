"""Conversation templates that render messages to prompt text plus the supervised character spans.

Spans are in characters, not tokens, so a trainer can mask labels with whatever tokenizer it
uses (see :func:`sphinx_tasks.token_labels`).

Two label rules exist (``Template.label_rules``):

- ``"reference"`` (the ``sphinx`` template): what the reference code does. A training render
  (no generation prompt) ``strip()``s every message and deletes every literal ``<image>``; each
  supervised span starts at the space that ends ``" Assistant: "``, so the lone ``"▁"`` piece
  sentencepiece emits before an answer starting with a digit is supervised, as the reference's
  segment matching does. A prompt render (``add_generation_prompt=True`` or an open assistant
  turn) keeps every message exactly as given, ``<image>`` included, as the reference's
  inference does.
- ``"overlap"`` (the other templates): ``<image>`` is removed (and that message stripped) when
  ``remove_image_marker`` is set, in prompts and training renders alike; spans cover exactly
  ``content + assistant_end``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ._house import Registry

IMAGE_MARKER = "<image>"

_ROLE_ALIASES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
}


@dataclass(frozen=True)
class Message:
    """One turn; ``content`` is None only for an open assistant turn left to the model."""

    role: str
    content: str | None


@dataclass(frozen=True)
class Rendered:
    """Prompt text and the [start, end) character spans a trainer should supervise."""

    text: str
    supervised_spans: list[tuple[int, int]]

    def supervised_text(self) -> list[str]:
        return [self.text[start:end] for start, end in self.supervised_spans]


def normalize_messages(messages: Iterable[Mapping]) -> list[Message]:
    """Accept both ``{"role", "content"}`` and LLaVA's ``{"from", "value"}`` message forms."""
    normalized = []
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise ValueError(f"message {index}: expected a dict, got {type(message).__name__}")
        if "role" in message:
            raw_role, content = message["role"], message.get("content")
        elif "from" in message:
            raw_role, content = message["from"], message.get("value")
        else:
            raise ValueError(
                f"message {index}: expected a 'role' or 'from' key, got {sorted(message)}"
            )
        role = _ROLE_ALIASES.get(str(raw_role).lower())
        if role is None:
            raise ValueError(
                f"message {index}: unknown role {raw_role!r}; expected one of {sorted(_ROLE_ALIASES)}"
            )
        if content is not None and not isinstance(content, str):
            raise ValueError(
                f"message {index}: content must be a string, got {type(content).__name__}"
            )
        normalized.append(Message(role, content))
    return normalized


def strip_image_marker(text: str) -> str:
    """Remove ``<image>`` markers and strip, only where the text holds a marker."""
    if IMAGE_MARKER in text:
        return text.replace(IMAGE_MARKER, "").strip()
    return text


def reference_clean(text: str) -> str:
    """The reference trainer's rule for every message: delete ``<image>``, then strip."""
    return text.replace(IMAGE_MARKER, "").strip()


LABEL_RULES = ("overlap", "reference")


@dataclass(frozen=True)
class Template:
    """A conversation layout described by the strings around each part.

    The rendered text is ``system + system_end`` followed, per message, by
    ``<role>_prefix + content + <role>_end``; an open assistant turn renders as
    ``generation_prompt``. Supervised spans cover ``content + assistant_end`` of assistant turns
    (under ``label_rules="reference"`` also the space before the content; see the module doc).
    """

    name: str
    system: str = ""
    system_end: str = ""
    user_prefix: str = ""
    user_end: str = ""
    assistant_prefix: str = ""
    assistant_end: str = ""
    generation_prompt: str = ""
    stop_strings: tuple[str, ...] = ()
    drop_empty_messages: bool = False
    remove_image_marker: bool = True
    label_rules: str = "overlap"

    def __post_init__(self) -> None:
        if self.label_rules not in LABEL_RULES:
            raise ValueError(
                f"template {self.name!r}: label_rules={self.label_rules!r}; expected one of"
                f" {list(LABEL_RULES)}"
            )

    @classmethod
    def from_dict(cls, data: Mapping) -> Template:
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"template: unknown keys {unknown}; expected some of {sorted(known)}")
        values = dict(data)
        if "stop_strings" in values:
            values["stop_strings"] = tuple(values["stop_strings"])
        return cls(**values)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["stop_strings"] = list(self.stop_strings)
        return data

    def render(self, messages: Iterable[Mapping], add_generation_prompt: bool = False) -> Rendered:
        """Render messages; an assistant message with ``None`` content (last only) opens a turn.

        The render is a prompt when it ends with the generation prompt, else a training text;
        under ``label_rules="reference"`` only a training text has its messages cleaned.
        """
        turns = normalize_messages(messages)
        system = self.system
        if turns and turns[0].role == "system":
            system = turns[0].content or ""
            turns = turns[1:]
        closed = []
        open_turn = False
        for index, turn in enumerate(turns):
            if turn.role == "system":
                raise ValueError(f"message {index}: a system message may only come first")
            if turn.content is None:
                if turn.role != "assistant" or index != len(turns) - 1:
                    raise ValueError(
                        f"message {index}: only the last assistant message may be None"
                    )
                open_turn = True
                break
            closed.append(turn)
        is_prompt = open_turn or (
            add_generation_prompt and (not closed or closed[-1].role != "assistant")
        )
        parts = [system + self.system_end] if (system or self.system_end) else []
        length = len(parts[0]) if parts else 0
        spans: list[tuple[int, int]] = []
        for turn in closed:
            content = self._clean(turn.content, is_prompt)
            if self.drop_empty_messages and not content:
                continue
            is_assistant = turn.role == "assistant"
            prefix = self.assistant_prefix if is_assistant else self.user_prefix
            end = self.assistant_end if is_assistant else self.user_end
            start = length + len(prefix)
            piece = prefix + content + end
            parts.append(piece)
            length += len(piece)
            if is_assistant:
                reach_back = self.label_rules == "reference" and prefix.endswith(" ")
                spans.append((start - 1 if reach_back else start, length))
        if is_prompt:
            parts.append(self.generation_prompt)
        return Rendered("".join(parts), spans)

    def _clean(self, content: str, is_prompt: bool) -> str:
        if self.label_rules == "reference":
            return content if is_prompt else reference_clean(content)
        return strip_image_marker(content) if self.remove_image_marker else content


_SPHINX_SYSTEM = (
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions."
)

_TEMPLATES: Registry[Template] = Registry("template")


def register_template(
    name: str | Template, template: Template | None = None, overwrite: bool = False
) -> Template:
    """Make a template available to :func:`get_template`.

    ``register_template("mine", t)`` registers ``t`` under "mine" (its ``name`` set to match);
    ``register_template(t)`` uses ``t.name``. An existing name is refused unless ``overwrite``.
    """
    if isinstance(name, Template):
        name, template = name.name, name
    if not isinstance(template, Template):
        raise TypeError(f"template {name!r}: expected a Template, got {type(template).__name__}")
    if template.name != name:
        template = dataclasses.replace(template, name=name)
    return _TEMPLATES.register(name, template, overwrite=overwrite)


def get_template(name: str | Template) -> Template:
    """The template registered under ``name`` (a Template is returned as is)."""
    if isinstance(name, Template):
        return name
    return _TEMPLATES.get(name)


def list_templates(pattern: str | None = None) -> list[str]:
    """Registered template names, optionally filtered by a glob such as ``"llava*"``."""
    return _TEMPLATES.names(pattern)


register_template(
    Template(
        name="sphinx",
        system=_SPHINX_SYSTEM,
        system_end="\n\n###",
        user_prefix=" Human: ",
        user_end="\n###",
        assistant_prefix=" Assistant: ",
        assistant_end="\n###",
        generation_prompt=" Assistant:",
        stop_strings=("###",),
        label_rules="reference",
    )
)
register_template(
    Template(
        name="llava_v1",
        system=_SPHINX_SYSTEM,
        system_end=" ",
        user_prefix="USER: ",
        user_end=" ",
        assistant_prefix="ASSISTANT: ",
        assistant_end="</s>",
        generation_prompt="ASSISTANT:",
        stop_strings=("</s>",),
    )
)
register_template(
    Template(name="plain", assistant_end="\n", stop_strings=("\n",), drop_empty_messages=True)
)
