"""The MuJoCo backend on a real scene: state round trip, rendering, IK, contacts."""

import numpy as np
import pytest

from sims.core.rotations import mat_to_rot6d, rotation_angle
from sims.partmanip.factory import make_env


@pytest.fixture(scope="module")
def camera_env():
    env = make_env({"obs_keys": ("proprio", "state", "rgb.agentview", "depth.agentview",
                                 "part_mask.agentview", "rgb.wrist")})
    env.reset(seed=3)
    yield env
    env.close()


def _rollout(env, actions):
    out = []
    for a in actions:
        obs, *_ = env.step(a)
        out.append(np.concatenate([obs["proprio"], obs["state"]]))
    return np.stack(out)


def test_get_set_state_replays_exactly(mug_env):
    env = mug_env
    env.reset(seed=11)
    rng = np.random.default_rng(0)
    base = env.commanded_target
    actions = [base + np.r_[rng.normal(0, 0.02, 3), np.zeros(6), [rng.uniform()]] for _ in range(15)]
    for a in actions[:5]:
        env.step(a)
    state = env.get_state()
    first = _rollout(env, actions[5:])
    env.set_state(state)
    second = _rollout(env, actions[5:])
    np.testing.assert_array_equal(first, second)


def test_ik_reaches_targets_within_5mm(mug_env):
    env = mug_env
    env.reset(seed=0)
    _, home_mat = env.backend.tcp_pose()
    rng = np.random.default_rng(1)
    for _ in range(4):
        target = np.array([rng.uniform(0.35, 0.6), rng.uniform(-0.2, 0.2), rng.uniform(0.1, 0.4)])
        action = np.r_[target, mat_to_rot6d(home_mat), 1.0]
        for _ in range(40):  # 2 s at 20 Hz
            env.step(action)
        pos, mat = env.backend.tcp_pose()
        assert np.linalg.norm(pos - target) < 0.005, (pos, target)
        assert rotation_angle(mat, home_mat) < 0.02


def test_render_rgb_depth_and_part_mask(camera_env):
    obs = camera_env._observation()
    rgb, depth, mask = obs["rgb.agentview"], obs["depth.agentview"], obs["part_mask.agentview"]
    assert rgb.shape == (128, 128, 3) and rgb.dtype == np.uint8 and rgb.std() > 10
    assert obs["rgb.wrist"].shape == (128, 128, 3)
    assert depth.dtype == np.float32
    # The camera is ~1 m from the workspace: table pixels are metres away, not millimetres.
    assert 0.4 < np.median(depth) < 2.0
    assert 0 < mask.sum() < 0.05 * mask.size  # the handle is a small patch of the image
    # The handle's pixels are closer to the camera than the table behind them.
    assert depth[mask].mean() < np.median(depth)


def test_segmentation_labels_cover_object_parts(camera_env):
    b = camera_env.backend
    seg = b.render("agentview", rgb=False, segmentation=True).segmentation
    labels = {b.segmentation_labels[i] for i in np.unique(seg)}
    name = camera_env.asset.name
    assert {"table", "robot", f"{name}/body"} <= labels


def test_finger_contacts_report_the_grasped_part(mug_env):
    from sims.partmanip.expert import ScriptedExpert
    from sims.partmanip.tasks import make_task

    env, expert = mug_env, ScriptedExpert()
    env.reset(options={"task": make_task(1, "mug", "body", instance_id=1, init_seed=5)})
    expert.reset(env)
    assert env.backend.finger_contacts() == []
    for _ in range(150):
        *_, done, _, info = env.step(expert.act(env))
        if done:
            break
    contacts = env.backend.finger_contacts()
    assert {c.finger for c in contacts} == {"left", "right"}
    assert {c.part for c in contacts} == {"body"}
    # (of several contact points per pad some may carry no force)
    assert {c.finger for c in contacts if c.normal_force > 0} == {"left", "right"}
    assert all(c.normal_force >= 0 for c in contacts)


def test_squeezed_pads_sink_under_3_mm_into_a_part(mug_env):
    # a pump head 18 mm across: at MuJoCo's default contact stiffness the pads sank 4.6-6.3 mm
    # into it, and a round one squeezed out sideways as it was lifted
    import mujoco

    from sims.partmanip.expert import ScriptedExpert
    from sims.partmanip.tasks import make_task

    env, expert = mug_env, ScriptedExpert()
    env.reset(options={"task": make_task(1, "dispenser", "head", instance_id=5, init_seed=1)})
    expert.reset(env)
    m, d = env.backend.model, env.backend.data
    pads = {mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, f"panda_{s}finger_pad") for s in ("left", "right")}
    deepest = 0.0
    for _ in range(60):
        *_, done, _, info = env.step(expert.act(env))
        deepest = min([deepest] + [c.dist for c in d.contact[:d.ncon] if {c.geom1, c.geom2} & pads])
        if done:
            break
    assert info["success"]
    assert -0.003 < deepest < 0.0


def test_mujoco_backend_implements_the_protocol(mug_env):
    from sims.core.backend import Backend

    mug_env.reset(seed=0)  # a built backend: every protocol member is there
    assert isinstance(mug_env.backend, Backend)


@pytest.mark.parametrize("gl", ["osmesa", "egl"])
def test_a_process_that_renders_can_still_import_triton(gl):
    # Mesa (OSMesa, or EGL on a CPU) and Triton each carry an LLVM: Triton imported after Mesa
    # segfaults. mujoco loads Mesa as it is imported, so sims.mujoco loads Triton before it; a
    # policy (torch.compile, diffusers) may import Triton after the scene has rendered.
    import ctypes.util
    import importlib.util
    import os
    import subprocess
    import sys

    if importlib.util.find_spec("triton") is None:
        pytest.skip("triton is not installed: nothing to load in the wrong order")
    if ctypes.util.find_library({"osmesa": "OSMesa", "egl": "EGL"}[gl]) is None:
        pytest.skip(f"no {gl} library on this machine")
    code = ("from sims.partmanip.factory import make_env\n"
            "env = make_env({'obs_keys': ('proprio', 'rgb.agentview'), 'image_size': (32, 32)})\n"
            "obs, _ = env.reset(seed=0)\n"
            "assert obs['rgb.agentview'].std() > 0\n"
            "import triton\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "MUJOCO_GL": gl, "PYOPENGL_PLATFORM": gl})
    assert run.returncode == 0, run.stderr[-2000:]


def test_the_table_sets_the_friction_objects_slide_with(mug_env):
    """Object-table contacts take the table's friction, not the larger of the two geoms' (the
    objects' own is high for the fingers' sake): a push of 1.4x the table's friction along the
    table slides the object, 0.6x does not move it."""
    import mujoco

    from sims.core.types import TableSpec
    from sims.partmanip.tasks import make_task

    env = mug_env
    env.reset(options={"task": make_task(1, "mug", "body", instance_id=1, init_seed=5)})
    b = env.backend
    m, d = b.model, b.data
    root = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, f"{env.asset.name}/base")
    own = [m.geom_friction[g, 0] for g in range(m.ngeom) if m.body_rootid[m.geom_bodyid[g]] == root]
    mu = TableSpec().friction
    assert min(own) > 1.4 * mu  # else the test could not tell which friction applies
    weight = float(m.body_subtreemass[root]) * 9.81
    start = b.get_state()
    moved = {}
    for ratio in (0.6, 1.4):
        b.set_state(start)
        mujoco.mj_forward(m, d)
        x0 = b.object_pose(env.asset.name)[0]
        push = np.array([ratio * mu * weight, 0.0, 0.0])
        # applied at the centre of mass, with the torque that moves it down to the table's
        # level: a push up there would tip the mug over instead of sliding it
        d.xfrc_applied[root] = np.concatenate([push, np.cross([0.0, 0.0, -d.xipos[root][2]], push)])
        mujoco.mj_step(m, d, nstep=int(0.5 / m.opt.timestep))
        d.xfrc_applied[root] = 0.0
        moved[ratio] = float(np.linalg.norm((b.object_pose(env.asset.name)[0] - x0)[:2]))
    assert moved[0.6] < 0.002
    assert moved[1.4] > 0.02


def test_backends_are_made_by_name_through_the_registry():
    from sims.core.backend import Backend
    from sims.core.registry import backend_names, make_backend, register_backend
    from sims.mujoco import MujocoBackend

    assert "mujoco" in backend_names()
    backend = make_backend("mujoco")
    assert isinstance(backend, MujocoBackend)
    with pytest.raises(ValueError, match="unknown backend 'bullet' \\(known: .*mujoco"):
        make_backend("bullet")
    with pytest.raises(ValueError, match="not 'module:Class'"):
        register_backend("bad", "sims.mujoco.MujocoBackend")
    # an env picks its backend by EnvConfig.backend: a name registered by "module:Class"
    register_backend("mujoco_again", "sims.mujoco.backend:MujocoBackend")
    env = make_env({"backend": "mujoco_again"})
    try:
        env.reset(seed=0)
        assert isinstance(env.backend, MujocoBackend)
        assert isinstance(env.backend, Backend)  # built: every protocol member answers
    finally:
        env.close()


def test_projection_inverts_the_pixel_rays():
    from sims.core.camera import fixed_camera_rays, project
    from sims.partmanip.env import default_cameras

    cam = default_cameras(40, 30)[0]
    pos, rays = fixed_camera_rays(cam)
    depth = np.random.default_rng(0).uniform(0.3, 2.0, len(rays))
    uv, d = project(pos + depth[:, None] * rays, pos, _rotation(cam), cam.fovy_deg, 40, 30)
    np.testing.assert_allclose(d, depth, atol=1e-9)
    rows, cols = np.divmod(np.arange(len(rays)), 40)  # row-major from the top-left pixel
    np.testing.assert_allclose(uv, np.stack([cols + 0.5, rows + 0.5], axis=1), atol=1e-9)


def _rotation(cam):
    from sims.core.camera import spec_rotation

    return spec_rotation(cam)
