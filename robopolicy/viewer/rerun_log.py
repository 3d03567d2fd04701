"""Log an episode to rerun by replaying it in the simulator (meshes and camera poses from its
backend), on the time sequence `step` (step 0 = after reset, step t+1 = after action t; action t
is logged at step t).

Entity paths (world = robot base frame, metres, z up):
  world/robot/<link>/<geom>, world/object/<part>/<geom>, world/table   meshes (static, geom
      frame) moved by a Transform3D every step
  world/camera/<cam>                   Pinhole + pose;  .../rgb (Image), .../part_mask
                                       (SegmentationImage: 1 = the current target part)
  world/pcd                            the `skill_pcd` observation (target-part points in red)
  world/action/tcp_target              the executed TCP target (point);  world/action/tcp_path
                                       the whole executed path (static line strip)
  world/policy/pred_chunk              (rollouts) the predicted future TCP positions, logged at
                                       the step they were predicted;  world/policy/executed_chunk
                                       the targets executed over the same steps
  action/{tcp_pos,rot6d,gripper}       executed action curves
  proprio/{joints,gripper_width,tcp_pos,tcp_rot6d}
  skill/index, skill/instruction (TextLog when the skill changes), task (TextDocument, static)
  status/{success,completion}, predicates/<name> (0/1)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from robopolicy.viewer.replay import replay_steps
from robopolicy.viewer.sources import Episode
from sims.core.camera import focal_px

CAMERAS = ("agentview", "wrist")
OBS_KEYS = (*(f"{kind}.{cam}" for cam in CAMERAS for kind in ("rgb", "part_mask")), "skill_pcd",
            "proprio")
TARGET_RGB = (230, 60, 50)  # the target part, in masks and point clouds
PRED_RGB, EXEC_RGB, PATH_RGB = (240, 160, 20), (40, 170, 240), (120, 120, 120)
PROPRIO_SLICES = {"joints": slice(0, 7), "gripper_width": slice(7, 8), "tcp_pos": slice(8, 11),
                  "tcp_rot6d": slice(11, 17)}
ACTION_SLICES = {"tcp_pos": slice(0, 3), "rot6d": slice(3, 9), "gripper": slice(9, 10)}
SERIES_NAMES = {"joints": [f"q{i}" for i in range(7)], "tcp_pos": ["x", "y", "z"],
                "tcp_rot6d": [f"r{i}" for i in range(6)], "rot6d": [f"r{i}" for i in range(6)]}


def blueprint():
    """The default layout: the 3D scene over the two cameras (images with the part mask on top),
    and beside them the action, proprio and skill/success/predicate curves, the skill log and the
    task."""
    import rerun.blueprint as rrb

    cameras = rrb.Horizontal(*(rrb.Spatial2DView(origin=f"world/camera/{c}", name=c)
                               for c in CAMERAS))
    return rrb.Blueprint(rrb.Horizontal(
        rrb.Vertical(rrb.Spatial3DView(origin="world", name="scene"), cameras, row_shares=[2, 1]),
        rrb.Vertical(
            rrb.TimeSeriesView(origin="action", name="action (executed)"),
            rrb.TimeSeriesView(origin="proprio", name="proprio"),
            rrb.TimeSeriesView(contents=["/skill/index", "/status/**", "/predicates/**"],
                               name="skill, success, predicates"),
            rrb.Tabs(rrb.TextLogView(origin="skill", name="skills"),
                     rrb.TextDocumentView(origin="task", name="task")),
        ),
        column_shares=[3, 2]), collapse_panels=False)


def log_episode(episode: Episode, rec) -> dict:
    """Replay `episode` and log it to the rerun RecordingStream `rec`; returns the final info."""
    info: dict = {}
    dynamic: list[tuple[str, int]] = []
    skill = None
    for t, env, obs, info in replay_steps(episode, OBS_KEYS):
        if t == 0:
            dynamic = _log_static(episode, env, rec)
        rec.set_time("step", sequence=t)
        _log_scene(env, dynamic, rec)
        _log_observation(obs, rec)
        skill = _log_info(info, skill, rec)
        if t < episode.steps:
            _log_action(episode, t, rec)
    return info


def _log_static(episode: Episode, env, rec) -> list[tuple[str, int]]:
    """Everything logged once: meshes, cameras' intrinsics, series styles, the task text, the
    executed path. Returns the (entity, mesh id) of the meshes that move."""
    import rerun as rr

    rec.log("world", rr.ViewCoordinates.RIGHT_HAND_Z_UP, static=True)
    meshes = env.backend.scene_meshes()
    for m in meshes:
        rec.log(f"world/{m.entity}", rr.Mesh3D(vertex_positions=m.vertices, triangle_indices=m.faces,
                                               vertex_normals=m.normals, albedo_factor=m.rgba),
                static=True)
    fixed = [m for m in meshes if m.fixed]
    for m, pos, rot in zip(fixed, *env.backend.mesh_poses([m.id for m in fixed]), strict=True):
        rec.log(f"world/{m.entity}", rr.Transform3D(translation=pos, mat3x3=rot), static=True)
    rec.log("world/camera", rr.AnnotationContext(
        [(0, "background", (0, 0, 0, 0)), (1, "target part", TARGET_RGB)]), static=True)
    specs = {c.name: c for c in env.cameras}
    for cam in CAMERAS:
        w, h = env.config.image_size
        fovy = specs[cam].fovy_deg
        # The focal length in pixels with the real width and height: given fov_y and an aspect
        # ratio instead, rerun sizes the image plane 1 x 1 px and each 2-D panel zooms into one
        # pixel. RUB is sims.core.camera's convention (x right, y up, looking along -z).
        rec.log(f"world/camera/{cam}", rr.Pinhole(focal_length=float(focal_px(h, fovy)), width=w, height=h,
                                                  image_plane_distance=0.1,
                                                  camera_xyz=rr.ViewCoordinates.RUB), static=True)
    for group, names in (("action", ACTION_SLICES), ("proprio", PROPRIO_SLICES)):
        for name in names:
            if name in SERIES_NAMES:
                rec.log(f"{group}/{name}", rr.SeriesLines(names=SERIES_NAMES[name]), static=True)
    rec.log("task", rr.TextDocument(_task_markdown(episode), media_type="text/markdown"),
            static=True)
    rec.log("world/action/tcp_path", rr.LineStrips3D([episode.actions[:, :3]], colors=[PATH_RGB],
                                                     radii=0.002), static=True)
    return [(f"world/{m.entity}", m.id) for m in meshes if not m.fixed]


def _log_scene(env, dynamic: list[tuple[str, int]], rec) -> None:
    import rerun as rr

    positions, rotations = env.backend.mesh_poses([mesh_id for _, mesh_id in dynamic])
    for (path, _), pos, rot in zip(dynamic, positions, rotations, strict=True):
        rec.log(path, rr.Transform3D(translation=pos, mat3x3=rot))
    for cam in CAMERAS:
        pos, rot = env.backend.camera_pose(cam)
        rec.log(f"world/camera/{cam}", rr.Transform3D(translation=pos, mat3x3=rot))


def _log_observation(obs: dict[str, np.ndarray], rec) -> None:
    import rerun as rr

    for cam in CAMERAS:
        if f"rgb.{cam}" in obs:
            rec.log(f"world/camera/{cam}/rgb", rr.Image(obs[f"rgb.{cam}"]))
        if f"part_mask.{cam}" in obs:
            rec.log(f"world/camera/{cam}/part_mask",
                    rr.SegmentationImage(obs[f"part_mask.{cam}"].astype(np.uint8)))
    if "skill_pcd" in obs:
        pcd = obs["skill_pcd"]
        colors = np.where(pcd[:, 3:4] > 0.5, TARGET_RGB, (170, 170, 170)).astype(np.uint8)
        rec.log("world/pcd", rr.Points3D(pcd[:, :3], colors=colors, radii=0.003))
    if "proprio" in obs:
        for name, sl in PROPRIO_SLICES.items():
            rec.log(f"proprio/{name}", rr.Scalars(obs["proprio"][sl]))


def _log_info(info: dict[str, Any], previous_skill: int | None, rec) -> int:
    """Log the skill, success, completion and predicates; returns the skill index."""
    import rerun as rr

    index = int(info["skill_index"])
    if index != previous_skill:  # the skill changed: say which
        rec.log("skill/instruction", rr.TextLog(f"skill {index}: {info['skill_instruction']}"))
    rec.log("skill/index", rr.Scalars(float(index)))
    rec.log("status/success", rr.Scalars(float(info["success"])))
    rec.log("status/completion", rr.Scalars(float(info["completion"])))
    for name, value in info.get("predicates", {}).items():
        rec.log(f"predicates/{rr.escape_entity_path_part(str(name))}", rr.Scalars(float(value)))
    return index


def _log_action(episode: Episode, t: int, rec) -> None:
    import rerun as rr

    action = episode.actions[t]
    for name, sl in ACTION_SLICES.items():
        rec.log(f"action/{name}", rr.Scalars(action[sl]))
    rec.log("world/action/tcp_target", rr.Points3D(action[None, :3], colors=[EXEC_RGB],
                                                   radii=0.008))
    if episode.pred_chunk is None:
        return
    if episode.pred_step is not None and int(episode.pred_step[t]) != t:
        return  # each chunk is logged once, at the step it was predicted
    future = episode.pred_chunk[t][episode.pred_offset:, :3]  # from this step on
    rec.log("world/policy/pred_chunk", rr.LineStrips3D([future], colors=[PRED_RGB], radii=0.003))
    executed = episode.actions[t:t + len(future), :3]
    rec.log("world/policy/executed_chunk", rr.LineStrips3D([executed], colors=[EXEC_RGB],
                                                           radii=0.003))


def _task_markdown(episode: Episode) -> str:
    task, meta = episode.task, episode.meta
    chain = "\n".join(f"{i}. {s}" for i, s in enumerate(task.get("skill_instructions", [])))
    return (f"# {task['instruction']}\n\n{episode.where}, episode {episode.index}\n\n"
            f"- task: `{task['task_id']}` (class {task.get('task_class')}, {task.get('category')} "
            f"instance {task.get('instance_id')})\n"
            f"- seed: {meta.get('seed')}, steps: {episode.steps}, success: {meta.get('success')}\n\n"
            f"## Skills\n{chain}\n")
