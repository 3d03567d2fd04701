"""Perturbation test splits: each kind changes what the agentview sees (or where the object
stands) but not the task, deterministically per episode."""

from dataclasses import replace

import numpy as np
import pytest

from sims.partmanip.env import EnvConfig, PartManipEnv
from sims.partmanip.expert import ScriptedExpert
from sims.partmanip.perturb import PERTURBATIONS, PoseWide, make_perturbation
from sims.partmanip.tasks import make_task

KEYS = ("rgb.agentview", "state", "pcd")
VISUAL = ("lighting", "camera", "appearance")
TASK = make_task(1, "mug", "handle", instance_id=1, init_seed=7)


@pytest.fixture(scope="module")
def envs():
    made = {k: PartManipEnv(EnvConfig(obs_keys=KEYS, perturb=k)) for k in (None, *PERTURBATIONS)}
    yield made
    for env in made.values():
        env.close()


def _reset(env, task=TASK):
    obs, info = env.reset(options={"task": task})
    return obs, info


def _diff(a, b) -> float:
    return float(np.abs(a.astype(int) - b.astype(int)).mean())


@pytest.mark.parametrize("kind", VISUAL)
def test_a_visual_kind_changes_the_agentview_but_not_the_task(envs, kind):
    nominal, info0 = _reset(envs[None])
    obs, info = _reset(envs[kind])
    assert _diff(obs["rgb.agentview"], nominal["rgb.agentview"]) > 10.0
    assert info["task_id"] == info0["task_id"] and info["instruction"] == info0["instruction"]
    assert envs[kind].task == TASK
    np.testing.assert_array_equal(obs["state"], nominal["state"])  # physics untouched
    assert envs[kind].perturbation.kind == kind and envs[kind].perturbation.placement is None
    # the pcd is still the object, wherever the camera went: its points are where it is
    centroid = obs["pcd"].mean(axis=0)
    assert np.linalg.norm(centroid[:2] - obs["state"][:2]) < 0.05


def test_pose_wide_moves_the_object_not_the_task(envs):
    nominal, info0 = _reset(envs[None])
    obs, info = _reset(envs["pose_wide"])
    assert info["task_id"] == info0["task_id"] and envs["pose_wide"].task == TASK
    x, y = envs["pose_wide"].perturbation.placement
    np.testing.assert_allclose(obs["state"][:2], (x, y), atol=0.01)
    assert _diff(obs["rgb.agentview"], nominal["rgb.agentview"]) > 0.5


@pytest.mark.parametrize("kind", PERTURBATIONS)
def test_an_episode_is_perturbed_the_same_way_every_time_and_its_neighbours_differently(envs, kind):
    env = envs[kind]
    first, _ = _reset(env)
    p1 = env.perturbation
    other = replace(TASK, init_seed=8)
    between, _ = _reset(env, other)
    p_other = env.perturbation
    again, _ = _reset(env)
    fresh = PartManipEnv(EnvConfig(obs_keys=KEYS, perturb=kind))  # another process would agree
    try:
        fresh_obs, _ = _reset(fresh)
    finally:
        fresh.close()
    for obs in (again, fresh_obs):
        np.testing.assert_array_equal(obs["rgb.agentview"], first["rgb.agentview"])
        np.testing.assert_array_equal(obs["state"], first["state"])
    assert repr(env.perturbation) == repr(p1)
    assert repr(p_other) != repr(p1)
    if kind in VISUAL:  # the same object pose, another look
        other_nominal, _ = _reset(envs[None], other)
        assert _diff(between["rgb.agentview"], other_nominal["rgb.agentview"]) > 10.0
        assert _diff(between["rgb.agentview"], first["rgb.agentview"]) > 2.0


def test_restoring_the_nominal_look_renders_the_nominal_image(envs):
    nominal, _ = _reset(envs[None])
    env = envs["appearance"]
    _reset(env)
    env.backend.apply_visual(None)
    np.testing.assert_array_equal(env.observe()[0]["rgb.agentview"], nominal["rgb.agentview"])


def test_pose_wide_placements_lie_outside_the_training_range_on_the_table():
    config, wide = EnvConfig(), PoseWide()
    env = PartManipEnv(EnvConfig(obs_keys=("state",), perturb="pose_wide"))
    points = []
    try:
        for seed in range(12):
            env.reset(options={"task": replace(TASK, init_seed=seed)})
            points.append(env.perturbation.placement)
    finally:
        env.close()
    (x0, x1), (y0, y1), m = config.x_range, config.y_range, wide.margin
    for x, y in points:
        assert wide.x_range[0] <= x <= wide.x_range[1] and wide.y_range[0] <= y <= wide.y_range[1]
        assert not (x0 - m <= x <= x1 + m and y0 - m <= y <= y1 + m), (x, y)
    assert len(set(points)) == len(points)


@pytest.mark.parametrize("task", [make_task(1, "mug", "handle", instance_id=0, init_seed=3),
                                  make_task(3, "mug", "body", "left", instance_id=2, init_seed=5)])
def test_the_expert_still_solves_pose_wide_episodes(task):
    env = PartManipEnv(EnvConfig(obs_keys=("state",), perturb="pose_wide"))
    expert = ScriptedExpert()
    try:
        env.reset(options={"task": task})
        expert.reset(env)
        for _ in range(task.horizon):
            *_, terminated, truncated, info = env.step(expert.act(env))
            if terminated or truncated:
                break
        assert info["success"], env.perturbation.placement
    finally:
        env.close()


def test_unknown_kinds_and_ranges_are_one_line_errors():
    with pytest.raises(ValueError, match=r"unknown perturb 'fog' \(known: lighting, camera"):
        EnvConfig(perturb="fog")
    with pytest.raises(ValueError, match="perturb lighting: unknown Lighting keys"):
        make_perturbation({"kind": "lighting", "brightness": 2})
    assert make_perturbation(None) is None


def test_pybullet_moves_its_camera_and_refuses_the_kinds_it_cannot_render():
    env = PartManipEnv(EnvConfig(obs_keys=("rgb.agentview",), backend="pybullet",
                                 perturb="appearance"))
    try:
        with pytest.raises(ValueError, match="pybullet backend does not render perturb=appearance"):
            _reset(env)
    finally:
        env.close()
    imgs = {}
    for kind in (None, "camera"):
        env = PartManipEnv(EnvConfig(obs_keys=("rgb.agentview",), backend="pybullet", perturb=kind))
        try:
            imgs[kind] = _reset(env)[0]["rgb.agentview"]
        finally:
            env.close()
    assert _diff(imgs["camera"], imgs[None]) > 10.0
