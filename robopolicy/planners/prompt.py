"""The prompt the model planners (openai, transformers) send: the instruction, the skill
grammar, the object's part vocabulary, the skills done so far and the agentview image.

A `Prompt` is model-neutral; `openai_messages` writes it as chat-completions messages (the
image as a base64 PNG data URL) and `chat_messages` as a transformers chat template's input.
After an invalid answer, the retry prompt repeats the answer and the error it raised.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from robopolicy.planners.grammar import (
    DIRECTIONS,
    FACINGS,
    MAX_MOVE_DISTANCE,
    SKILL_PARAMS,
    SkillCall,
)
from robopolicy.planners.vocabulary import PartVocabulary

Mode = Literal["plan", "next"]
IMAGE_KEY = "rgb.agentview"  # the observation key of the image the planner sees

SYSTEM = (
    "You are the task planner of a robot arm with a parallel gripper. You turn an instruction "
    "and a camera image of the object on the table into part-level skills that a low-level "
    "controller executes one at a time. Answer with one JSON object and nothing else."
)


@dataclass(frozen=True)
class Prompt:
    """One request to a model planner: system text, user text and an optional PNG image."""

    system: str
    text: str
    image_png: bytes | None = None
    mode: Mode = "plan"


def png_bytes(image: np.ndarray) -> bytes:
    """An (H, W, 3) uint8 RGB image as PNG bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def call_json(call: SkillCall) -> str:
    """A skill call in the answer format, e.g. {"skill": "grasp", "part": "handle"}."""
    return json.dumps({"skill": call.skill, **call.params})


def grammar_text() -> str:
    """The skill grammar as the prompt states it."""
    lines = ["Skills and their parameters:"]
    for skill, (required, optional) in SKILL_PARAMS.items():
        params = [*required, *(f"{p} (optional, metres, default 0.12, at most {MAX_MOVE_DISTANCE})"
                               for p in optional)]
        lines.append(f"- {skill}: {', '.join(params) if params else 'no parameters'}")
    lines += [
        f"Directions of move (robot base frame): {', '.join(DIRECTIONS)} "
        "(front is towards the robot, top is up).",
        f"The direction of rotate is where the part ends up facing: {', '.join(FACINGS)}.",
        "A move or rotate keeps holding the part grasped or touched before it; release lets go.",
    ]
    return "\n".join(lines)


def _format(mode: Mode) -> str:
    if mode == "plan":
        return ('Answer the whole plan as {"skills": [{"skill": "grasp", "part": "<part>"}, '
                '{"skill": "move", "direction": "top"}, {"skill": "release"}]}.')
    return ('Answer the next skill only, e.g. {"skill": "move", "direction": "left"}, or '
            '{"done": true} if the task is finished.')


def build_prompt(mode: Mode, instruction: str, vocabulary: PartVocabulary,
                 history: Sequence[SkillCall] = (), observation: Mapping[str, Any] | None = None,
                 feedback: tuple[str, str] | None = None,
                 plan: Sequence[SkillCall] = ()) -> Prompt:
    """The prompt for a plan (`mode="plan"`) or the next skill (`mode="next"`, reminded of the
    episode's `plan`); `feedback` is (the previous answer, why it was rejected) on a retry."""
    parts = [
        f"Instruction: {instruction}",
        f"Object: {vocabulary.category.replace('_', ' ')}",
        f"Parts you may name: {', '.join(vocabulary.semantic)}; "
        f"spatial parts: {', '.join(vocabulary.spatial)}.",
        grammar_text(),
    ]
    if mode == "next":
        if plan:
            parts.append("Your plan at the start:\n" + "\n".join(map(call_json, plan)))
        done = "\n".join(map(call_json, history))
        parts.append(f"Skills done so far, in order:\n{done}" if history else
                     "Skills done so far: none yet.")
    parts.append(_format(mode))
    if feedback is not None:
        answer, error = feedback
        parts.append(f"Your previous answer was:\n{answer.strip()[:2000]}\n"
                     f"It was rejected: {error}\nAnswer again, correctly.")
    image = None if observation is None else observation.get(IMAGE_KEY)
    png = png_bytes(np.asarray(image)) if image is not None else None
    return Prompt(SYSTEM, "\n\n".join(parts), png, mode)


def openai_messages(prompt: Prompt) -> list[dict]:
    """Chat-completions messages: the system text, then the user text and the image."""
    user: list[dict] = [{"type": "text", "text": prompt.text}]
    if prompt.image_png is not None:
        user.append({"type": "image_url", "image_url": {"url": data_url(prompt.image_png)}})
    return [{"role": "system", "content": prompt.system}, {"role": "user", "content": user}]


def chat_messages(prompt: Prompt) -> list[dict]:
    """A transformers chat template's messages (the image as a placeholder the processor fills)."""
    user: list[dict] = []
    if prompt.image_png is not None:
        user.append({"type": "image"})
    user.append({"type": "text", "text": prompt.text})
    return [{"role": "system", "content": [{"type": "text", "text": prompt.system}]},
            {"role": "user", "content": user}]
