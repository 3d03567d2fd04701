"""The learned skill planner's network: instruction + skills so far + camera -> next skill.

A small transformer decoder reads the skills finished so far (one input position each, after
a start token) and cross-attends to the instruction's MiniLM token embeddings; each position
also sees the agentview frame of its query through a small CNN. Three heads answer per
position: the skill (5 skills or done), the direction (6), and the part, chosen by pointing:
a candidate part's score is its name's embedding matched against the decoder state, plus
how similar its name is to the instruction tokens a pointer attention looks at (with
`pointer="context"` also whether those tokens are its name's words). Parts are never a fixed
class list, so an unseen category's part names can be chosen.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from robopolicy.errors import RobopolicyError
from robopolicy.planners.data import (
    DIRECTION_NAMES,
    IGNORE,
    NO_DIRECTION,
    POINTERS,
    SKILL_CLASSES,
    START_TOKEN,
)


class FrameEncoder(nn.Module):
    """(N, H, W, 3) uint8 frames -> (N, d) features (resized to `size` first)."""

    def __init__(self, d_model: int, size: int) -> None:
        super().__init__()
        self.size = size
        self.net = nn.Sequential(
            nn.Conv2d(3, 32, 4, stride=4), nn.GELU(),  # patches: cheap on a CPU
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(64, 64, 3, stride=2, padding=1), nn.GELU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, d_model))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames.permute(0, 3, 1, 2).float() / 255.0 - 0.5
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="area")
        return self.net(x)


class SkillPlannerNet(nn.Module):
    """See the module docstring. Inputs are `robopolicy.planners.data.PlannerBatcher`'s."""

    name = "skill_planner"
    shape_meta: dict = {}  # no store observation shapes: the planner reads text and one camera

    def __init__(self, d_model: int = 128, n_layers: int = 2, n_heads: int = 4,
                 text_dim: int = 384, use_image: bool = True, image_size: int = 64,
                 max_skills: int = 16, max_tokens: int = 128, dropout: float = 0.1,
                 pointer: str = "name") -> None:
        super().__init__()
        if pointer not in POINTERS:
            raise RobopolicyError(f"policy.pointer: {pointer!r} is not one of {', '.join(POINTERS)}")
        self.config = dict(d_model=d_model, n_layers=n_layers, n_heads=n_heads, text_dim=text_dim,
                           use_image=use_image, image_size=image_size, max_skills=max_skills,
                           max_tokens=max_tokens, dropout=dropout, pointer=pointer)
        self.use_image = use_image
        self.pointer = pointer
        self.text_proj = nn.Linear(text_dim, d_model)
        self.token_pos = nn.Embedding(max_tokens, d_model)
        self.skill_emb = nn.Embedding(START_TOKEN + 1, d_model)
        self.direction_emb = nn.Embedding(NO_DIRECTION + 1, d_model)
        self.part_proj = nn.Linear(text_dim, d_model)
        self.position_emb = nn.Embedding(max_skills + 1, d_model)
        self.frames = FrameEncoder(d_model, image_size) if use_image else None
        layer = nn.TransformerDecoderLayer(d_model, n_heads, 4 * d_model, dropout,
                                           batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, n_layers)
        self.norm = nn.LayerNorm(d_model)
        self.skill_head = nn.Linear(d_model, len(SKILL_CLASSES))
        self.direction_head = nn.Linear(d_model, len(DIRECTION_NAMES))
        self.pointer_q = nn.Linear(d_model, d_model)
        self.pointer_k = nn.Linear(d_model, d_model)
        self.part_q = nn.Linear(d_model, text_dim)
        self.name_scale = nn.Parameter(torch.tensor(10.0))
        if pointer == "context":
            self.match_scale = nn.Parameter(torch.tensor(5.0))

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per position logits: `skill` (B, L, 6), `direction` (B, L, 6), `part` (B, L, P)."""
        tokens, token_mask = batch["tokens"], batch["token_mask"]
        B, L = batch["in_skill"].shape
        T = tokens.shape[1]
        memory = self.text_proj(tokens) + self.token_pos(torch.arange(T, device=tokens.device))
        part_in = batch["in_part"].clamp_min(0)
        part_vec = torch.gather(batch["parts"], 1, part_in[..., None].expand(-1, -1, batch["parts"].shape[-1]))
        part_vec = part_vec * (batch["in_part"] != IGNORE)[..., None]
        x = (self.skill_emb(batch["in_skill"]) + self.direction_emb(batch["in_direction"])
             + self.part_proj(part_vec) + self.position_emb(torch.arange(L, device=tokens.device)))
        if self.frames is not None:
            if "images" not in batch:
                raise ValueError("this planner looks at the agentview camera: the batch has no images")
            valid = batch["position_mask"]  # padding positions need no frame features
            feats = torch.zeros_like(x)
            feats[valid] = self.frames(batch["images"][valid]).to(x.dtype)
            x = x + feats
        causal = torch.triu(torch.ones(L, L, dtype=torch.bool, device=x.device), diagonal=1)
        h = self.decoder(x, memory, tgt_mask=causal, memory_key_padding_mask=~token_mask,
                         tgt_is_causal=True)
        h = self.norm(h)
        # pointer: which instruction tokens name the part, then which candidate they match
        att = self.pointer_q(h) @ self.pointer_k(memory).transpose(1, 2) / math.sqrt(h.shape[-1])
        att = att.masked_fill(~token_mask[:, None, :], float("-inf")).softmax(-1)
        by_name = self.name_scale * (att @ batch["part_sim"].transpose(1, 2))  # (B, L, P)
        if self.pointer == "context":
            by_name = by_name + self.match_scale * (att @ batch["part_match"].transpose(1, 2))
        by_embedding = self.part_q(h) @ batch["parts"].transpose(1, 2)         # (B, L, P)
        part = (by_name + by_embedding).masked_fill(
            ~batch["part_mask"][:, None, :], float("-inf"))
        return {"skill": self.skill_head(h), "direction": self.direction_head(h), "part": part}

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Cross-entropy of the three heads (each where it applies) and their accuracies."""
        out = self(batch)
        terms, correct = {}, []
        for head in ("skill", "direction", "part"):
            logits, target = out[head], batch[head]
            valid = target != IGNORE
            terms[f"{head}_loss"] = (F.cross_entropy(logits[valid], target[valid]) if valid.any()
                                     else logits.sum() * 0.0)
            hit = (logits.argmax(-1) == target) | ~valid
            terms[f"{head}_acc"] = hit[valid].float().mean() if valid.any() else torch.ones(())
            correct.append(hit)
        positions = batch["skill"] != IGNORE
        # a query is right when every head that applies is right (the whole skill call)
        terms["call_acc"] = torch.stack(correct).all(0)[positions].float().mean()
        terms["loss"] = terms["skill_loss"] + terms["direction_loss"] + terms["part_loss"]
        return terms


#: the policy config's `_target_` that `robopolicy train` trains as the learned planner
PLANNER_TARGET = "robopolicy.planners.network.SkillPlannerNet"
# read by the trainer (the augmentations), not the net
_CONFIG_ONLY = ("name", "_target_", "mirror_prob", "compose_prob")


def build_planner_net(policy_cfg: dict):
    """The network a `policy=skill_planner` config describes (an unknown key: one line)."""
    import inspect

    kwargs = {k: v for k, v in policy_cfg.items() if k not in _CONFIG_ONLY}
    known = set(inspect.signature(SkillPlannerNet).parameters)
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise RobopolicyError(f"policy=skill_planner: unknown key(s) {', '.join(unknown)} "
                              f"(known: {', '.join(sorted(known))})")
    return SkillPlannerNet(**kwargs)
