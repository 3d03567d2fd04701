"""Evaluation throughput: a full evaluation's episodes/hour and env steps/s with 1..K rollout
workers (M envs each), for a trivial policy and a diffusion policy, against the sequential
single-env loop that robomimic's `run_rollout` and diffusion_policy's env runners use (one env
in the evaluating process, the policy called for that env alone), in one run.

    python benchmarks/eval_throughput.py [--per-cell 1] [--max-workers 2] [--envs 4]

Episodes: the first `--per-cell` episodes per category of catalog split test1 (the episode
lists `robopolicy eval splits=[test1]` uses), at their full horizon. The trivial policy holds
the arm still (every episode runs to the horizon) and observes proprio plus both cameras'
RGB (so rendering and transfer of images are measured); the diffusion policy is the default
`diffusion_unet` (DDIM-10) on proprio + state, its normalizer fitted to 4 expert demos and its
weights untrained (the cost of a call does not depend on them). Time shares are of the wall
time: simulation, rendering, set-up (worker start-up, scene builds at resets), policy, and
transfer (pipes and pickling). Prints a table and the JSON it writes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

CAMERA_OBS = ["proprio", "rgb.agentview", "rgb.wrist"]
TASKS = {"source": "catalog", "split": "test1"}


class HoldRunner:
    """A trivial policy: the action that keeps the TCP where it is, gripper open."""

    n_obs_steps, n_action_steps, seed = 1, 1, 0

    def noise_generator(self, episode):
        return None

    def forget(self, episode):
        pass

    def __call__(self, windows, texts, generators, episodes=None):
        p = np.stack([w["proprio"][-1] for w in windows])  # joints 7, gripper 1, tcp 3 + rot6d 6
        return np.concatenate([p[:, 8:17], np.ones((len(p), 1), np.float32)], 1)[:, None]


def diffusion_policy(root: Path) -> Path:
    """The default diffusion_unet config, normalizer fitted to 4 expert demos, saved."""
    from omegaconf import OmegaConf

    from robopolicy.commands.app import config_dir
    from robopolicy.data.collect import CollectConfig, collect
    from robopolicy.data.store import EpisodeStore
    from robopolicy.policies.io import instantiate_policy, save_policy
    from robopolicy.training.trainer import policy_shape_meta

    demos = collect(CollectConfig({"obs_keys": ["proprio", "state"]},
                                  {"classes": [1], "parts": ["handle"]}, root / "demos.zarr",
                                  episodes=4, seed=0, workers=1))
    store = EpisodeStore.open(demos.path)
    cfg = OmegaConf.to_container(OmegaConf.load(config_dir() / "policy" / "diffusion_unet.yaml"))
    cfg.pop("defaults", None)
    policy = instantiate_policy(cfg, policy_shape_meta(store, ["proprio", "state"]))
    policy.fit_normalizer(store.load(["proprio", "state", "action"]))
    return save_policy(policy, root / "dp", cfg)


def sequential(runner, specs, env_config: dict) -> dict:
    """The peer loop: one env in this process, reset, then policy call / Ta steps, episode by
    episode (robomimic `run_rollout`, diffusion_policy's runners with one env)."""
    from collections import deque

    from sims.partmanip.factory import make_env

    t0 = time.perf_counter()
    env = make_env(env_config)
    policy_s = steps = 0
    for spec in specs:
        obs, info = env.reset(options={"task": spec.task})
        history = deque([obs] * runner.n_obs_steps, maxlen=runner.n_obs_steps)
        gen = runner.noise_generator(spec.key)
        done = False
        while not done:
            window = {k: np.stack([o[k] for o in history]) for k in obs}
            t1 = time.perf_counter()
            chunk = runner([window], [info["instruction"]], [gen], [spec.key])[0]
            policy_s += time.perf_counter() - t1
            for action in chunk:
                obs, _, term, trunc, info = env.step(action)
                history.append(obs)
                steps += 1
                if term or trunc:
                    done = True
                    break
    wall = time.perf_counter() - t0
    env.close()
    share = lambda x: round(x / wall, 3)  # noqa: E731
    return {"wall_s": round(wall, 1), "env_steps": steps, "env_steps_per_s": round(steps / wall, 1),
            "episodes_per_hour": round(len(specs) / wall * 3600, 1),
            "share": {"simulation": share(env.timings["physics"]),
                      "rendering": share(env.timings["render"]), "set-up": None,
                      "policy": share(policy_s), "transfer": 0.0},
            "workers": 0, "envs_per_worker": 1}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-cell", type=int, default=1, help="test1 episodes per category")
    ap.add_argument("--max-workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--envs", type=int, default=4, help="envs per worker")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/eval_throughput.json"))
    args = ap.parse_args()
    import torch

    from robopolicy.evaluation.rollout import make_runner, rollouts, split_episodes

    torch.set_num_threads(1)  # the parent's policy shares the cores with the workers
    specs = split_episodes(TASKS, "test1", args.per_cell)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # batched calls: the loop this benchmark compares with the peers' one-env loops
        dp_runner, dp_env, _ = make_runner(diffusion_policy(root), {}, TASKS, seed=0, device="cpu",
                                           batch_invariant=False)
        cases = [("trivial", HoldRunner(), {"obs_keys": CAMERA_OBS}),
                 ("diffusion", dp_runner, dp_env)]
        for name, runner, env in cases:
            timing = sequential(runner, specs, env)
            rows.append({"policy": name, "loop": "sequential (peer)", **timing})
            for w in range(1, args.max_workers + 1):
                executor = {"kind": "process", "workers": w, "envs_per_worker": args.envs}
                _, timing = rollouts(runner, specs, env, TASKS, root / f"{name}_{w}", executor)
                rows.append({"policy": name, "loop": "rollout pool", **timing})
    result = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
              "episodes": len(specs), "split": "test1", "rows": rows}
    print(f"{'policy':>9} {'loop':>17} {'workers':>7} {'envs':>4} {'wall s':>7} {'ep/h':>7} "
          f"{'steps/s':>7} {'sim':>5} {'render':>6} {'set-up':>6} {'policy':>6} {'transfer':>8}")
    for r in rows:
        s = {k: "-" if v is None else f"{v:.0%}" for k, v in r["share"].items()}
        print(f"{r['policy']:>9} {r['loop']:>17} {r['workers']:>7} {r['envs_per_worker']:>4} "
              f"{r['wall_s']:>7} {r['episodes_per_hour']:>7} {r['env_steps_per_s']:>7} "
              f"{s['simulation']:>5} {s['rendering']:>6} {s['set-up']:>6} {s['policy']:>6} "
              f"{s['transfer']:>8}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
