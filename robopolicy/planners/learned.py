"""The learned planner: a small vision-language network trained here (`policy=skill_planner`).

    planner = make_planner({"name": "learned", "path": "outputs/train/.../checkpoints/latest"})

It answers one skill at a time: `plan` gives the first skill, and `next_skill` the skill
after the finished ones, each time from the instruction, the skills so far and the agentview
frame of that moment (the frames of earlier queries are kept for the episode). The network's
answer is a skill call by construction (a skill, a direction among those the skill allows, a
part among the object's), and it is still checked by the grammar like any planner's answer.
A "done" before any skill ends the episode as `planner_invalid`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np

from robopolicy.errors import RobopolicyError
from robopolicy.planners import register_planner
from robopolicy.planners.base import Planner, PlannerInvalid, done_future
from robopolicy.planners.grammar import DONE, FACINGS, SKILL_PARAMS, Done, SkillCall, validate
from robopolicy.planners.vocabulary import ObjectInfo, PartVocabulary

PLANNER_KIND = "skill_planner"


def load_planner_net(path: str | Path, device: str = "cpu"):
    """The network of a planner directory (`checkpoints/latest` of `train policy=skill_planner`);
    a missing directory or a directory of another kind is a one-line error. Weights load from
    safetensors only."""
    from omegaconf import OmegaConf
    from safetensors.torch import load_file

    from robopolicy.planners.network import PLANNER_TARGET, build_planner_net

    path = Path(path)
    if not path.is_dir():
        raise RobopolicyError(f"planner.path {path}: no such directory (train one with "
                              "`robopolicy train policy=skill_planner dataset.path=<store>`)")
    try:
        meta = json.loads((path / "meta.json").read_text())
        config = OmegaConf.to_container(OmegaConf.load(path / "config.yaml"), resolve=True)
    except (OSError, ValueError) as exc:
        raise RobopolicyError(f"planner.path {path}: not a planner directory (no readable "
                              f"meta.json/config.yaml: {str(exc).splitlines()[0]})") from None
    kind = meta.get("policy")
    if kind != PLANNER_KIND or config.get("_target_") != PLANNER_TARGET:
        raise RobopolicyError(f"planner.path {path} holds a '{kind}' policy, not a learned planner "
                              f"(train one with `robopolicy train policy={PLANNER_KIND}`)")
    net = build_planner_net(config)
    try:
        state = load_file(str(path / "model.safetensors"), device="cpu")
        net.load_state_dict(state, strict=True)
    except Exception as exc:  # a truncated or foreign weights file
        raise RobopolicyError(f"planner.path {path}: model.safetensors does not load into the "
                              f"planner ({str(exc).splitlines()[0]})") from None
    return net.to(device).eval()


@register_planner()
class LearnedPlanner(Planner):
    """See the module docstring."""

    def __init__(self, path: str, device: str = "cpu", concurrency: int = 1,
                 snap_threshold: float = 0.75) -> None:
        super().__init__(concurrency=concurrency)
        from robopolicy.device import resolve_device
        from robopolicy.models.text_encoder import TextEncoder
        from robopolicy.planners.data import PlannerBatcher

        self.device = resolve_device(device)
        self.net = load_planner_net(path, self.device)
        self.obs_keys = ("rgb.agentview",) if self.net.use_image else ()
        if self.net.use_image:
            from robopolicy.data.schema import store_image_size

            self.image_size = store_image_size(path)
        self.snap_threshold = snap_threshold
        self._text = TextEncoder("minilm")
        self._text(["load the encoder now"])  # so the first query's latency is the planner's own
        # one batcher for every episode this planner spawns: its part embeddings are cached
        self._batcher = PlannerBatcher(self._text, self.net.pointer)
        self._episode: dict[str, Any] | None = None

    def reset(self, episode: str | None = None) -> None:
        super().reset(episode)
        self._episode = None

    def plan(self, instruction: str, observation: Mapping[str, Any],
             object_info: ObjectInfo) -> list[SkillCall]:
        from robopolicy.planners.data import PlannerEpisode

        vocab = PartVocabulary.for_object(object_info, self.snap_threshold)
        self._episode = {"episode": PlannerEpisode(instruction, vocab.entries, []), "vocab": vocab,
                         "frames": []}
        first = self._query([], observation)
        if isinstance(first, Done):
            raise PlannerInvalid("planner 'learned': answered done before any skill")
        return [first]

    def next_skill(self, history: Sequence[SkillCall],
                   observation: Mapping[str, Any]) -> SkillCall | Done:
        if self._episode is None:
            raise RobopolicyError("planner 'learned': next_skill before plan(): call plan() at the "
                                  "episode's start")
        return self._query(list(history), observation)

    def _frame(self, observation: Mapping[str, Any]) -> np.ndarray | None:
        if not self.net.use_image:
            return None
        if "rgb.agentview" not in observation:
            raise RobopolicyError("planner 'learned': the observation has no rgb.agentview")
        img = np.asarray(observation["rgb.agentview"])
        return img[-1] if img.ndim == 4 else img  # the latest frame of a stacked window

    def _query(self, history: list[SkillCall], observation: Mapping[str, Any]) -> SkillCall | Done:
        import torch

        from robopolicy.planners.data import (
            DIRECTION_NAMES,
            DONE_CLASS,
            SKILL_CLASSES,
        )

        ep = self._episode
        frames = ep["frames"]
        frame = self._frame(observation)
        del frames[len(history):]  # a repeated query (a timed-out skill) replaces its frame
        if frame is not None:
            frames.append(frame)
            if len(frames) != len(history) + 1:  # history from elsewhere: repeat what we have
                frames[:] = [frames[0]] * (len(history) + 1 - len(frames)) + frames
        self.calls += 1
        batch = self._batcher([ep["episode"]], history=[history],
                              frames=[np.stack(frames)] if frame is not None else None)
        with torch.no_grad():
            out = self.net({k: v.to(self.device) for k, v in batch.items()})
        k = len(history)
        skill = SKILL_CLASSES[int(out["skill"][0, k].argmax())]
        if SKILL_CLASSES.index(skill) == DONE_CLASS:
            return DONE
        required, _ = SKILL_PARAMS[skill]
        params: dict[str, Any] = {}
        if "part" in required:
            params["part"] = ep["vocab"].entries[int(out["part"][0, k].argmax())]
        if "direction" in required:
            logits = out["direction"][0, k].clone()
            if skill == "rotate":  # a rotation turns a part to face a horizontal way
                allowed = torch.tensor([d in FACINGS for d in DIRECTION_NAMES], device=logits.device)
                logits = logits.masked_fill(~allowed, float("-inf"))
            params["direction"] = DIRECTION_NAMES[int(logits.argmax())]
        return validate(SkillCall(skill, params), ep["vocab"])

    # answers take milliseconds: no thread pool
    def plan_async(self, instruction: str, observation: Mapping[str, Any],
                   object_info: ObjectInfo) -> Future:
        return done_future(self.plan, instruction, observation, object_info)

    def next_skill_async(self, history: Sequence[SkillCall], observation: Mapping[str, Any]) -> Future:
        return done_future(self.next_skill, list(history), observation)
