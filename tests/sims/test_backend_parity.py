"""The MuJoCo and PyBullet backends agree: kinematics, cameras, object inertia, a grasp.

Every test runs on both backends; the agreement tests compare each backend with the other
(or with a backend-neutral reference: the IK target, the table plane, the asset's geometry).
"""

from __future__ import annotations

import numpy as np
import pytest

from sims.core.camera import pixel_rays, project
from sims.core.registry import make_backend
from sims.core.rotations import rotation_angle
from sims.core.types import PlacedObject, SceneSpec
from sims.objects import make_instance
from sims.partmanip.env import default_cameras

BACKENDS = ["mujoco", "pybullet"]
DOWN = np.diag([1.0, -1.0, -1.0])  # TCP pointing at the table
TARGETS = [(np.array([0.45, 0.10, 0.20]), DOWN),
           (np.array([0.55, -0.15, 0.08]), DOWN),
           (np.array([0.40, 0.0, 0.30]), np.array([[0, 1.0, 0], [1.0, 0, 0], [0, 0, -1.0]]))]
MASS_CATEGORIES = ["mug", "kettle", "laptop", "dispenser", "scissors"]


def _scene(category: str = "mug", instance: int = 0) -> tuple[SceneSpec, str]:
    asset = make_instance(category, instance)
    return SceneSpec(objects=[PlacedObject(asset, (0.5, 0.05, 0.002), (0.9239, 0, 0, 0.3827))],
                     cameras=list(default_cameras())), asset.name


@pytest.fixture(scope="module")
def built():
    """One built backend of each kind on the same mug scene, settled for 0.2 s."""
    scene, _ = _scene()
    out = {}
    for name in BACKENDS:
        b = make_backend(name)
        b.build(scene)
        b.step(100)
        out[name] = b
    yield out
    for b in out.values():
        b.close()


def _reach(b, pos, mat) -> np.ndarray:
    """Drive the arm to the TCP pose (pos, mat) as the env does, one control step at a time."""
    q = b.arm_targets
    for _ in range(60):
        q = b.solve_ik(pos, mat, q)
        b.apply(q, 1.0)
        b.step(20)
    b.step(250)
    return q


@pytest.mark.parametrize("backend", BACKENDS)
def test_home_tcp_is_the_same(built, backend):
    other = built[BACKENDS[1 - BACKENDS.index(backend)]]
    pos, rot = built[backend].tcp_pose()
    pos_o, rot_o = other.tcp_pose()
    assert np.linalg.norm(pos - pos_o) < 1e-3 and rotation_angle(rot, rot_o) < 2e-3


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("target", range(len(TARGETS)))
def test_ik_puts_the_tcp_on_the_target(built, backend, target):
    b = built[backend]
    pos, mat = TARGETS[target]
    q = _reach(b, pos, mat)
    tcp, rot = b.tcp_pose()
    assert np.linalg.norm(tcp - pos) < 1e-3, f"{backend}: TCP {tcp} for target {pos}"
    assert rotation_angle(rot, mat) < 5e-3
    np.testing.assert_allclose(b.arm_joint_positions(), q, atol=2e-3)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("camera", ["agentview", "wrist"])
def test_depth_puts_table_pixels_on_the_table_plane(built, backend, camera):
    b = built[backend]
    cam = next(c for c in default_cameras() if c.name == camera)
    out = b.render(camera, rgb=False, depth=True, segmentation=True)
    pos, rot = b.camera_pose(camera)
    points = pos + out.depth_m.reshape(-1, 1) * pixel_rays(pos, rot, cam.fovy_deg, cam.width,
                                                           cam.height)
    table = out.segmentation.reshape(-1) == b.segmentation_labels.index("table")
    assert table.sum() > 100, f"{backend}/{camera} sees {table.sum()} table pixels"
    assert np.percentile(np.abs(points[table, 2]), 95) < 3e-3


@pytest.mark.parametrize("camera", ["agentview", "wrist"])
def test_cameras_agree(built, camera):
    """Both backends see the object where `project` puts it (+-1 px) and at the same pixels."""
    _, name = _scene()
    cam = next(c for c in default_cameras() if c.name == camera)
    centroids, projected = {}, {}
    for backend, b in built.items():
        seg = b.render(camera, rgb=False, segmentation=True).segmentation
        ids = [i for i, s in enumerate(b.segmentation_labels) if s.startswith(name + "/")]
        rows, cols = np.nonzero(np.isin(seg, ids))
        assert len(rows) > 20, f"{backend}/{camera}: the object is not in view"
        centroids[backend] = np.array([cols.mean() + 0.5, rows.mean() + 0.5])
        pos, rot = b.camera_pose(camera)
        projected[backend] = project(b.object_com(name)[None], pos, rot, cam.fovy_deg,
                                     cam.width, cam.height)[0][0]
    mj, pb = BACKENDS
    assert np.abs(projected[mj] - projected[pb]).max() <= 1.0
    assert np.abs(centroids[mj] - centroids[pb]).max() <= 1.0


@pytest.mark.parametrize("category", MASS_CATEGORIES)
def test_object_mass_and_centre_of_mass_agree(category):
    scene, name = _scene(category)
    values = {}
    for backend in BACKENDS:
        b = make_backend(backend)
        try:
            b.build(scene)
            pos, _ = b.object_pose(name)
            values[backend] = (b.object_mass(name), b.object_com(name) - pos)
        finally:
            b.close()
    (m_mj, c_mj), (m_pb, c_pb) = values["mujoco"], values["pybullet"]
    assert m_pb == pytest.approx(m_mj, rel=0.05)
    assert np.linalg.norm(c_pb - c_mj) <= 0.05 * np.linalg.norm(c_mj) + 1e-3


@pytest.mark.parametrize("backend", BACKENDS)
def test_expert_grasps_and_lifts_a_mug_by_its_handle(backend):
    from sims.partmanip.env import EnvConfig
    from sims.partmanip.expert import ScriptedExpert
    from sims.partmanip.factory import make_env
    from sims.partmanip.tasks import make_task

    env = make_env(EnvConfig(backend=backend, obs_keys=("proprio", "state")))
    try:
        task = make_task(1, "mug", "handle", instance_id=3, init_seed=77)
        expert = ScriptedExpert()
        env.reset(options={"task": task})
        expert.reset(env)
        info = {"success": False}
        for _ in range(task.horizon):
            *_, terminated, truncated, info = env.step(expert.act(env))
            if terminated or truncated:
                break
        assert info["success"], f"{backend}: the expert did not lift the mug by its handle"
    finally:
        env.close()
