"""Text burnt into video frames: the task instruction on top, the current skill below."""

from __future__ import annotations

import numpy as np

BAR = 16  # px: height of each caption bar


def skill_caption(info: dict) -> str:
    """The bottom bar's text for a step: the running skill's number and instruction, or "task
    done" once the chain is achieved (the tracker's index is then past its last skill)."""
    if info.get("success"):
        return "task done"
    return f"skill {info['skill_index'] + 1}: {info['skill_instruction']}"


def caption_frames(frames: list[np.ndarray], instruction: str, skills: list[str]) -> np.ndarray:
    """(T, H + 2*BAR, W, 3) frames: `instruction` in a bar above every frame, `skills[t]` (the
    skill running at frame t) in a bar below."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    h, w = frames[0].shape[:2]
    top = Image.new("RGB", (w, BAR), (20, 20, 20))
    ImageDraw.Draw(top).text((4, 2), _fit(instruction, w), fill=(255, 255, 255), font=font)
    top = np.asarray(top)
    out = np.empty((len(frames), h + 2 * BAR, w, 3), np.uint8)
    cache: dict[str, np.ndarray] = {}
    for t, frame in enumerate(frames):
        text = skills[min(t, len(skills) - 1)] if skills else ""
        if text not in cache:
            bar = Image.new("RGB", (w, BAR), (20, 20, 20))
            ImageDraw.Draw(bar).text((4, 2), _fit(text, w), fill=(255, 220, 120), font=font)
            cache[text] = np.asarray(bar)
        out[t, :BAR], out[t, BAR:BAR + h], out[t, BAR + h:] = top, frame, cache[text]
    return out


def _fit(text: str, width: int, char_px: int = 6) -> str:
    """Cut `text` to what fits in `width` pixels of the default bitmap font."""
    n = max(4, width // char_px - 1)
    return text if len(text) <= n else text[: n - 3] + "..."
