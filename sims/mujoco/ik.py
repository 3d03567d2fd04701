"""Inverse kinematics for the Panda's TCP with mink (a QP-based differential IK solver)."""

from __future__ import annotations

import mink
import numpy as np

from sims.mujoco.panda import HOME_QPOS, panda_spec


class PandaIK:
    """Solves arm joint angles for a TCP pose (world = robot base frame) on a robot-only model.

    Iterates mink's differential IK from a seed until the TCP is within `pos_tol` metres and
    `rot_tol` radians, or `max_iters` is reached (then the best effort is returned). A small
    posture task towards the home pose resolves the arm's redundancy.
    """

    def __init__(self, max_iters: int = 30, pos_tol: float = 5e-4, rot_tol: float = 5e-3):
        self.model = panda_spec().compile()
        self.configuration = mink.Configuration(self.model)
        self.tcp_task = mink.FrameTask("tcp", "site", position_cost=1.0, orientation_cost=0.5,
                                       lm_damping=1e-6)
        self.posture_task = mink.PostureTask(self.model, cost=1e-3)
        q_home = np.zeros(self.model.nq)
        q_home[:7] = HOME_QPOS
        self.posture_task.set_target(q_home)
        self.limits = [mink.ConfigurationLimit(self.model)]
        self.max_iters, self.pos_tol, self.rot_tol = max_iters, pos_tol, rot_tol
        self._q = np.zeros(self.model.nq)

    def solve(self, pos: np.ndarray, mat: np.ndarray, q_seed: np.ndarray) -> np.ndarray:
        """Joint angles (7,) reaching TCP position `pos` (3,) and rotation `mat` (3, 3)."""
        self._q[:7] = q_seed
        self.configuration.update(self._q)
        target = mink.SE3.from_rotation_and_translation(mink.SO3.from_matrix(np.asarray(mat)),
                                                        np.asarray(pos, float))
        self.tcp_task.set_target(target)
        tasks = [self.tcp_task, self.posture_task]
        for _ in range(self.max_iters):
            err = self.tcp_task.compute_error(self.configuration)
            if np.linalg.norm(err[:3]) < self.pos_tol and np.linalg.norm(err[3:]) < self.rot_tol:
                break
            vel = mink.solve_ik(self.configuration, tasks, 1.0, "daqp", damping=1e-4,
                                limits=self.limits)
            self.configuration.integrate_inplace(vel, 1.0)
        return self.configuration.q[:7].copy()
