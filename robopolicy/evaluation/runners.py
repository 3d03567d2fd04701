"""What computes an evaluation's actions: a trained policy run batched in the parent
(`PolicyRunner`), or the scripted expert run inside the workers (`ExpertRunner`)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

EXPERT = "expert"  # policy.path (or policy=expert) naming the built-in oracle


class PolicyRunner:
    """Runs a Policy on numpy observation windows on its device.

    `batch_invariant` (the default) runs each row as a batch of one, with its episode's
    generator for every random draw: a row's actions are then a function of its own episode
    alone, bit for bit, whatever the batch, the row's position in it, or the worker count
    (batched matrix products and convolutions may sum in another order for another batch
    shape, and those last-bit differences grow over an episode's closed loop). False runs all
    rows in one batched call: faster, the same up to floating-point rounding.
    """

    def __init__(self, policy, device: str = "cpu", seed: int = 0, batch_invariant: bool = True):
        import torch

        self.torch = torch
        self.policy = policy.to(device).eval()
        self.device = device
        self.seed = seed
        self.batch_invariant = batch_invariant
        self.obs_keys = list(policy.shape_meta["obs"])
        self.n_obs_steps, self.n_action_steps = policy.n_obs_steps, policy.n_action_steps
        # a skill policy trained with skill_params: true also takes the skill's encode_skill vector
        self.uses_skill_params = bool(getattr(policy, "uses_skill_params", False))
        # ... and with next_skill: true the next skill's too (the director looks ahead for it)
        self.uses_next_skill = bool(getattr(policy, "uses_next_skill", False))
        # ... and the text its skill is named by (`robopolicy.data.skills.skill_text`)
        self.skill_text = str(getattr(policy, "skill_text", "instruction"))

    def noise_generator(self, episode: int):
        """The generator of an episode's sampling noise."""
        return self.torch.Generator().manual_seed(self.seed * 1_000_003 + episode)

    def forget(self, episode: int) -> None:
        """Drop what a stateful policy remembers of `episode` (before it is run again)."""
        if getattr(self.policy, "stateful", False):
            self.policy.forget(episode)

    def __call__(self, windows: list[dict[str, np.ndarray]], texts: list[str], generators: list,
                 episodes: list[int] | None = None, skill_params: np.ndarray | None = None):
        """Actions (B, Ta, Da) for each row's window; a `stateful` policy (BC-RNN) is also told
        each row's episode, so it carries each episode's memory whatever the batch;
        `skill_params` (B, SKILL_PARAMS_DIM): each row's skill vector, for a policy that
        `uses_skill_params` (ignored otherwise). The whole predicted chunk of each row is left in
        `last_chunks` (None if the policy has none)."""
        episodes = list(range(len(windows))) if episodes is None else list(episodes)
        params = self._skill_rows(skill_params, len(windows))
        if not self.batch_invariant:
            actions, whole = self._predict(windows, texts, generators, episodes, generator=None,
                                           skill_params=params)
        else:
            # A stateful policy keeps only the episodes of its latest call (one that is missing
            # has ended), so each one-row call sees every episode's memory and the step's call
            # keeps all rows' updated memories.
            stateful = getattr(self.policy, "stateful", False)
            carried = self.policy.memory if stateful else None
            rows, kept = [], {}
            for i, (w, t, g, e) in enumerate(zip(windows, texts, generators, episodes, strict=True)):
                if stateful:
                    self.policy.memory = carried
                rows.append(self._predict([w], [t], [g], [e], generator=g,
                                          skill_params=None if params is None else params[i:i + 1]))
                if stateful and e in (after := self.policy.memory):
                    kept[e] = after[e]
            if stateful:
                self.policy.memory = kept
            actions = np.concatenate([a for a, _ in rows])
            whole = None if rows[0][1] is None else np.concatenate([c for _, c in rows])
        self.last_chunks = whole
        return actions

    @property
    def has_done_head(self) -> bool:
        """Whether the policy predicts when its skill is done (a skill policy's done head)."""
        return getattr(self.policy, "done_head", None) is not None

    def predict_done(self, windows: list[dict[str, np.ndarray]], texts: list[str],
                     skill_params: np.ndarray | None = None) -> np.ndarray:
        """p(the current skill is done) (B,) for each row's window and skill instruction (and
        skill vector, as in `__call__`); one row at a time when batch-invariant."""
        params = self._skill_rows(skill_params, len(windows))
        rows = [[i] for i in range(len(windows))] if self.batch_invariant else [list(range(len(windows)))]
        out = []
        for idx in rows:
            obs = {k: self.torch.as_tensor(np.stack([windows[i][k] for i in idx])).to(self.device)
                   for k in self.obs_keys}
            extra = {} if params is None else {"skill_params": params[idx]}
            with self.torch.inference_mode():
                p = self.policy.predict_done(obs, [texts[i] for i in idx], **extra)
            out.append(p.float().cpu().numpy())
        return np.concatenate(out)

    def _skill_rows(self, skill_params, n: int):
        """The rows' skill vectors as a (n, P) tensor on the device, for a policy that takes
        them; None for one that does not."""
        if not self.uses_skill_params:
            return None
        if skill_params is None:
            from robopolicy.errors import RobopolicyError

            raise RobopolicyError("a policy trained with skill_params: true needs each skill's "
                                  "parameters: evaluate it as policy=bilevel policy.low_level=<it>")
        params = self.torch.as_tensor(np.asarray(skill_params, np.float32)).to(self.device)
        assert len(params) == n, (params.shape, n)
        return params

    def _predict(self, windows, texts, generators, episodes, generator, skill_params=None):
        torch = self.torch
        obs = {k: torch.as_tensor(np.stack([w[k] for w in windows])).to(self.device)
               for k in self.obs_keys}
        shape = (self.policy.horizon, self.policy.action_dim)
        noise = torch.stack([torch.randn(shape, generator=g) for g in generators]).to(self.device)
        extra = {"episodes": episodes} if getattr(self.policy, "stateful", False) else {}
        if skill_params is not None:
            extra["skill_params"] = skill_params
        self.policy.last_chunk = None
        with torch.inference_mode():
            actions = self.policy.predict_action(obs, texts, noise=noise, generator=generator,
                                                 **extra)
        whole = getattr(self.policy, "last_chunk", None)
        return (actions.float().cpu().numpy(),
                None if whole is None else whole.float().cpu().numpy())


class ExpertRunner:
    """The scripted expert as the evaluated policy: the workers compute its actions (it reads
    the simulator's ground truth), so the parent sends None and runs nothing itself.
    `expert_params` are the ExpertParams overrides the workers build their experts with."""

    n_obs_steps = 1
    n_action_steps = 1
    seed = 0
    acts_in_workers = True

    def __init__(self, expert_params: dict | None = None):
        self.expert_params = dict(expert_params or {})

    def noise_generator(self, episode: int):
        return None

    def forget(self, episode: int) -> None:
        pass


def warn_if_other_suite(policy_path, env_config: dict, task_config: dict) -> None:
    """Log the suite settings that differ from those of the policy's training demos."""
    meta = json.loads((Path(policy_path) / "meta.json").read_text())
    trained = meta.get("dataset_env_config") or {}
    diffs = [f"{group}.{k}: trained {trained[group].get(k)!r}, evaluating {v!r}"
             for group, now in (("env", env_config), ("tasks", task_config)) if group in trained
             for k, v in now.items() if k not in ("obs_keys", "split")
             and trained[group].get(k, v) != v]
    if diffs:
        log.warning("evaluating under other suite settings than the training demos: %s",
                    "; ".join(diffs))


def observation_sizes(policy_path, shape_meta: dict, env_config: dict, where: str) -> dict:
    """`env_config` with the image size and point count the policy's images and point clouds
    were trained at: the policy consumes nothing else, so the env renders them. A point cloud
    comes from the agentview's depth, so its image size is that of the policy's training store
    too (where its meta.json records it)."""
    from robopolicy.data.schema import store_image_size

    store_size = store_image_size(policy_path)
    sizes: dict = {}
    for key, spec in shape_meta["obs"].items():
        shape = list(spec["shape"])
        if _is_image(key):
            sizes["image_size"] = [shape[1], shape[0]]  # (h, w, ...) -> [w, h]
        elif key in ("pcd", "skill_pcd"):
            sizes["pcd_points"] = shape[0]
            if store_size:
                sizes.setdefault("image_size", store_size)
    return _with_sizes(env_config, sizes, where)


def _with_sizes(env_config: dict, sizes: dict, where: str) -> dict:
    """`env_config` with `sizes` set, in a log line where they differ from what it said."""
    from dataclasses import fields

    from sims.partmanip.env_config import EnvConfig

    defaults = {f.name: f.default for f in fields(EnvConfig)}
    said = {k: env_config.get(k, defaults[k]) for k in sizes}
    said = {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in said.items()}
    changed = [k for k, v in sizes.items() if said[k] != v]
    if changed:
        log.info("eval env: %s as %s was trained (the config said %s)",
                 ", ".join(f"{k}={sizes[k]}" for k in changed), where,
                 ", ".join(f"{k}={said[k]}" for k in changed))
    return {**env_config, **sizes}


def check_policy_observations(policy_path, shape_meta: dict, env_config: dict) -> None:
    """Refuse, in one line, a policy whose observations this env no longer gives as it was
    trained on them: a key of an older observation layout whose meaning changed, a key the env
    does not know, or another shape."""
    from robopolicy.errors import RobopolicyError
    from sims.partmanip.factory import make_env
    from sims.partmanip.obs_layout import stale_keys

    meta = json.loads((Path(policy_path) / "meta.json").read_text())
    keys = list(shape_meta["obs"])
    where, again = f"policy at {policy_path}", "train it again on a store from `robopolicy collect`"
    stale = stale_keys({"version": meta.get("obs_layout", 1)}, keys)
    if stale:
        raise RobopolicyError(f"{where}: trained on observation layout {meta.get('obs_layout', 1)} "
                              f"where {stale} meant something else; {again}")
    try:
        # cheap: the env builds no simulator before its first reset
        spaces = make_env({**env_config, "obs_keys": keys}, render_mode=None).observation_space
    except (ValueError, TypeError) as e:
        raise RobopolicyError(f"{where}: observation keys {keys}: {e}") from None
    for key in keys:
        trained, now = list(shape_meta["obs"][key]["shape"]), list(spaces[key].shape)
        if trained != now:
            raise RobopolicyError(f"{where}: observation {key!r} has shape {trained} in the "
                                  f"policy, {now} in this env; {again}")


def make_runner(policy_path, env_config: dict, task_config: dict, seed: int = 0,
                device: str = "auto", batch_invariant: bool = True,
                expert_params: dict | None = None, bilevel=None, action_steps: int | None = None):
    """(runner, env_config with the observations the policy needs, policy description);
    `expert_params`: the scripted expert's ExpertParams overrides (when the expert acts);
    `bilevel`: policy "bilevel"'s BilevelConfig; `action_steps`: the actions a learned policy
    (a bi-level policy's low level) runs per call instead of its trained Ta (None: as trained)."""
    if bilevel is not None:
        return make_bilevel_runner(bilevel, env_config, task_config, seed, device,
                                   batch_invariant, expert_params, action_steps)
    if str(policy_path) == EXPERT:
        return ExpertRunner(expert_params), {**env_config, "obs_keys": ["proprio"]}, EXPERT
    from robopolicy.device import resolve_device
    from robopolicy.policies.io import load_policy

    device = resolve_device(device)
    policy = load_policy(policy_path, device=device)
    described = str(Path(policy_path).resolve())
    if action_steps is not None:
        set_action_steps(policy, action_steps, described)
        described += f" (action_steps={action_steps})"
    env_config = observation_sizes(policy_path, policy.shape_meta, env_config, described)
    warn_if_other_suite(policy_path, env_config, task_config)
    check_policy_observations(policy_path, policy.shape_meta, env_config)
    # The env renders exactly what the policy observes.
    env_config = {**env_config, "obs_keys": list(policy.shape_meta["obs"])}
    return PolicyRunner(policy, device, seed, batch_invariant), env_config, described


def set_action_steps(policy, n: int, where: str) -> None:
    """Run `n` of each predicted chunk's actions per call (Ta) instead of the trained number:
    fewer close the loop sooner (more policy calls); at most horizon - n_obs_steps + 1."""
    from robopolicy.errors import RobopolicyError

    most = policy.horizon - policy.n_obs_steps + 1
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= most:
        raise RobopolicyError(f"eval: policy.action_steps={n!r}: must be a whole number from 1 to "
                              f"{most} for {where} (horizon {policy.horizon}, n_obs_steps "
                              f"{policy.n_obs_steps})")
    policy.n_action_steps = n


class TimedRunner:
    """A runner that adds up the seconds spent in the policy."""

    def __init__(self, runner):
        self.inner, self.seconds, self.calls = runner, 0.0, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __call__(self, *args):
        self.calls += 1
        t0 = time.perf_counter()
        out = self.inner(*args)
        self.seconds += time.perf_counter() - t0
        return out


def make_bilevel_runner(config, env_config: dict, task_config: dict, seed: int = 0,
                        device: str = "auto", batch_invariant: bool = True,
                        expert_params: dict | None = None, action_steps: int | None = None):
    """(runner, env_config, description) of a bi-level policy (`config`: a BilevelConfig), as
    `make_runner` returns them: the low-level runner, its env observations plus what the
    planner looks at, and a SkillDirector with the planner."""
    from robopolicy.evaluation.bilevel import BilevelRunner, SkillDirector
    from robopolicy.planners import make_planner

    planner = make_planner(dict(config.planner))  # a bad config fails now, in one line
    low_level, env_config, name = make_runner(config.low_level, env_config, task_config, seed,
                                              device, batch_invariant, expert_params,
                                              action_steps=action_steps)
    if config.advance == "learned" and not getattr(low_level, "has_done_head", False):
        from robopolicy.errors import RobopolicyError

        raise RobopolicyError(f"eval: policy.advance=learned: the low-level policy {name} has no "
                              "skill-done head (train it with policy=skill_diffusion)")
    keys = list(env_config["obs_keys"])
    if planner.image_size and not any(_is_image(k) or k in ("pcd", "skill_pcd") for k in keys):
        # a low level without images or point clouds leaves the frame size to the planner
        env_config = _with_sizes(env_config, {"image_size": list(planner.image_size)},
                                 f"planner '{planner.name}'")
    keys += [k for k in planner.obs_keys if k not in keys]
    director = SkillDirector(planner, config.advance, config.skill_timeout,
                             config.done_threshold,
                             low_level.predict_done if config.advance == "learned" else None,
                             config.replan_every, _lookahead(config.lookahead, low_level),
                             getattr(low_level, "uses_next_skill", False),
                             getattr(low_level, "skill_text", "instruction"))
    return (BilevelRunner(low_level, director, config.hold_grasp), {**env_config, "obs_keys": keys},
            f"bilevel(planner={planner.name}, low_level={name}, advance={config.advance}"
            f"{', hold_grasp' if config.hold_grasp else ''})")


def _is_image(key: str) -> bool:
    return key.split(".")[0] in ("rgb", "depth", "part_mask")


def _lookahead(setting, low_level) -> int:
    """policy.lookahead: "auto" tells the scripted expert the rest of the plan and a skill policy
    trained with next_skill: true the next call."""
    from robopolicy.evaluation.bilevel import LOOKAHEAD_EXPERT

    if setting != "auto":
        if setting < 1 and getattr(low_level, "uses_next_skill", False):
            from robopolicy.errors import RobopolicyError

            raise RobopolicyError(f"eval: policy.lookahead={setting}: the low-level policy is "
                                  "conditioned on the next skill (next_skill: true); use >= 1")
        return setting
    if isinstance(low_level, ExpertRunner):
        return LOOKAHEAD_EXPERT
    return int(getattr(low_level, "uses_next_skill", False))
