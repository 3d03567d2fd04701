"""Skill-level conditioning of chunk policies and their skill-done head.

A skill policy (``condition: skill``) is conditioned on the skill it executes, not the whole
task: in training each window gets the instruction of the skill active at its first observed
step (``SequenceSampler(skills=...)``); at inference the caller passes the current skill's
instruction as ``text`` (and, with ``skill_params: true``, its ``encode_skill`` vector).

The skill-done head (``skill_done_head: true``) is a small MLP on the policy's global condition
(encoded observation frames + skill instruction embedding + skill params) whose sigmoid is the
probability that the conditioning skill's goal holds at the last observed frame. Its label
comes from the store's skill boundaries: done = 1 iff the last observed step is at or after the
start of the next skill (the recorder starts skill k+1 at the first observation in which skill
k's goal holds), so it is a function of what the policy sees plus which skill it was asked to
do. A bi-level controller keeps skill k until ``predict_done`` > threshold, then moves on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from robopolicy.data.skills import SKILL_PARAMS_DIM, check_skill_text
from robopolicy.errors import RobopolicyError

CONDITIONS = ("task", "skill")


@dataclass(frozen=True)
class SkillOptions:
    """The skill keys of a chunk policy's config (all off by default: a task policy).

    Attributes:
        condition: ``task`` (text = the episode's instruction) or ``skill`` (text = the
            current skill's instruction; windows labelled per skill).
        skill_params: add the skill's (skill type, direction) one-hot vector to the condition;
            the store needs a ``chain`` per episode.
        next_skill: with ``skill_params``, also the next skill's vector (zeros after the last;
            ``robopolicy.data.skills.with_next``): how the expert touches or turns depends on
            what follows, so the demos of one skill differ by it.
        skill_done_head: train and expose ``predict_done``.
        done_loss_weight: weight of the done head's BCE in the total loss.
        done_hidden_dim: width of the done head's two hidden layers.
        done_lag_steps: training only: windows up to this many steps past a skill boundary are
            repeated conditioned on the finished skill, labelled done (``SequenceSampler``).
        skill_obs_keys: training only: obs keys holding skill-level fields; in windows that
            run past the conditioning skill's end they are held at its last step
            (``SequenceSampler(hold_keys=...)``), so the done head cannot key on the recorded
            switch to the next skill's fields.
        skill_text: which text conditions the policy (``robopolicy.data.skills.SKILL_TEXTS``):
            the skill's ``instruction``, or the ``generic`` one naming the object only
            "object", rebuilt from the skill call in training and at inference alike.
    """

    condition: str = "task"
    skill_params: bool = False
    next_skill: bool = False
    skill_done_head: bool = False
    done_loss_weight: float = 1.0
    done_hidden_dim: int = 256
    done_lag_steps: int = 0
    skill_obs_keys: tuple[str, ...] = ()
    skill_text: str = "instruction"

    def __post_init__(self) -> None:
        if self.condition not in CONDITIONS:
            raise RobopolicyError(f"condition '{self.condition}' is not one of {', '.join(CONDITIONS)}")
        for key in ("skill_params", "skill_done_head"):
            if getattr(self, key) and self.condition != "skill":
                raise RobopolicyError(f"{key}: true needs condition: skill (got '{self.condition}')")
        if self.next_skill and not self.skill_params:
            raise RobopolicyError("next_skill: true needs skill_params: true")
        object.__setattr__(self, "skill_obs_keys", tuple(self.skill_obs_keys or ()))
        if self.skill_obs_keys and self.condition != "skill":
            raise RobopolicyError(f"skill_obs_keys needs condition: skill (got '{self.condition}')")
        if check_skill_text(self.skill_text) != "instruction" and self.condition != "skill":
            raise RobopolicyError(f"skill_text: {self.skill_text} needs condition: skill "
                                  f"(got '{self.condition}')")
        if self.done_loss_weight < 0 or self.done_hidden_dim < 1 or self.done_lag_steps < 0:
            raise RobopolicyError(
                f"done_loss_weight ({self.done_loss_weight}) and done_lag_steps "
                f"({self.done_lag_steps}) must be >= 0, done_hidden_dim ({self.done_hidden_dim}) >= 1")


    @property
    def params_dim(self) -> int:
        """Width of the skill vector the policy is conditioned on (0: none)."""
        return SKILL_PARAMS_DIM * (2 if self.next_skill else 1) if self.skill_params else 0


class DoneHead(nn.Module):
    """Global condition (B, C) -> skill-done logit (B,)."""

    def __init__(self, cond_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(cond_dim, hidden_dim), nn.Mish(),
                                 nn.Linear(hidden_dim, hidden_dim), nn.Mish(),
                                 nn.Linear(hidden_dim, 1))

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        return self.net(cond).squeeze(-1)


def batch_vector(batch: Mapping[str, Any], key: str, device: torch.device) -> torch.Tensor | None:
    """``batch[key]`` as a float32 tensor on ``device`` (None when absent)."""
    value = batch.get(key)
    return None if value is None else torch.as_tensor(value, dtype=torch.float32, device=device)


def action_loss(err: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Mean of per-element errors (B, ...); with ``weight`` (B,), the weighted mean over samples
    (weight-0 samples, the sampler's lagged windows, add nothing)."""
    if weight is None:
        return err.mean()
    per_sample = err.reshape(len(err), -1).mean(dim=1)
    return (per_sample * weight).sum() / weight.sum().clamp_min(1.0)


def done_terms(logit: torch.Tensor, label: torch.Tensor) -> dict[str, torch.Tensor]:
    """BCE and accuracy (threshold 0.5) of done logits (B,) against 0/1 labels (B,)."""
    logit = logit.float()
    return {"done_loss": F.binary_cross_entropy_with_logits(logit, label),
            "done_acc": ((logit > 0) == (label > 0.5)).float().mean()}
