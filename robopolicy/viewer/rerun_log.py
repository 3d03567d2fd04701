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
  timeline/skill, timeline/success,     state timeline lanes (StateChange when they change): the
  timeline/predicates/<name>           running skill, running/success, and each goal predicate
                                       of the current skill (true/false; empty once it ended)
  skill/instruction (TextLog when the skill changes), task (TextDocument, static)
  timeline/planner                     (bi-level rollouts) the planner's skill from the step it
                                       started;  planner/reply (TextLog) each planner exchange's
                                       answer at the step it was asked at
  status/{success,completion}          0/1 and the fraction of the chain done
"""

from __future__ import annotations

from typing import Any

import numpy as np

from robopolicy.viewer.overlay import TARGET_RGB
from robopolicy.viewer.replay import replay_steps
from robopolicy.viewer.sources import Episode
from sims.core.camera import focal_px

CAMERAS = ("agentview", "wrist")
OBS_KEYS = (*(f"{kind}.{cam}" for cam in CAMERAS for kind in ("rgb", "part_mask")), "skill_pcd",
            "proprio")
PRED_RGB, EXEC_RGB, PATH_RGB = (240, 160, 20), (40, 170, 240), (120, 120, 120)
PROPRIO_SLICES = {"joints": slice(0, 7), "gripper_width": slice(7, 8), "tcp_pos": slice(8, 11),
                  "tcp_rot6d": slice(11, 17)}
ACTION_SLICES = {"tcp_pos": slice(0, 3), "rot6d": slice(3, 9), "gripper": slice(9, 10)}
XYZ_RGB = ((220, 60, 60), (60, 170, 60), (60, 110, 230))
PREDICATES = "timeline/predicates/"
PREDICATE_STATES = {"true": ("holds", (60, 170, 60)), "false": ("not yet", (150, 150, 150)),
                    "": ("", (0, 0, 0, 0))}  # "": the predicate is not the current skill's


def blueprint():
    """The default layout: the 3D scene over the two cameras (the target part overlaid in red);
    beside them a state timeline (skill, success, each goal predicate), then one plot per
    quantity (TCP position, gripper, joints), and tabs with the skill log, the task, the
    rotation and completion curves."""
    import rerun.blueprint as rrb

    hidden = rrb.PlotLegend(visible=False)  # a legend covers the curves; titles name them
    legend = rrb.PlotLegend(corner=rrb.Corner2D.RightBottom)
    cameras = rrb.Horizontal(*(rrb.Spatial2DView(origin=f"world/camera/{c}", name=c)
                               for c in CAMERAS))
    return rrb.Blueprint(rrb.Horizontal(
        rrb.Vertical(rrb.Spatial3DView(origin="world", name="scene"), cameras, row_shares=[3, 2]),
        rrb.Vertical(
            rrb.StateTimelineView(origin="timeline", name="skill, success, goal predicates"),
            rrb.TimeSeriesView(contents=["/proprio/tcp_pos", "/action/tcp_pos"],
                               name="TCP position (m): x red, y green, z blue; dots: target",
                               plot_legend=hidden),
            rrb.TimeSeriesView(contents=["/proprio/gripper_width", "/action/gripper"],
                               name="gripper width (m); dots: command (1 = open)",
                               plot_legend=hidden),
            rrb.TimeSeriesView(origin="proprio/joints", name="arm joints q1-q7 (rad)",
                               plot_legend=hidden),
            rrb.Tabs(rrb.TextLogView(origin="skill", name="skills"),
                     rrb.TextLogView(origin="planner", name="planner"),
                     rrb.TextDocumentView(origin="task", name="task"),
                     rrb.TimeSeriesView(contents=["/proprio/tcp_rot6d", "/action/rot6d"],
                                        name="rotation (6D)", plot_legend=legend),
                     rrb.TimeSeriesView(origin="status", name="completion", plot_legend=legend)),
            row_shares=[4, 2, 2, 2, 2],
        ),
        column_shares=[3, 2]),
        # the room goes to the views; the time panel stays for play, pause and scrubbing
        rrb.BlueprintPanel(state="collapsed"), rrb.SelectionPanel(state="collapsed"),
        rrb.TimePanel(state="collapsed"))


def log_episode(episode: Episode, rec) -> dict:
    """Replay `episode` and log it to the rerun RecordingStream `rec`; returns the final info."""
    info: dict = {}
    dynamic: list[tuple[str, int]] = []
    lanes: dict[str, str] = {}
    planned, replies = _planner_skills(episode), _planner_replies(episode)
    for t, env, obs, info in replay_steps(episode, OBS_KEYS):
        if t == 0:
            dynamic = _log_static(episode, env, rec)
        rec.set_time("step", sequence=t)
        _log_scene(env, dynamic, rec)
        _log_observation(obs, rec)
        lanes = _log_info(info, lanes, rec)
        _log_planner(planned.get(t), replies.get(t, ()), rec)
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
    _log_series_styles(rec)
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
            # drawn over the image: the part the current skill is about, at a glance
            rec.log(f"world/camera/{cam}/part_mask",
                    rr.SegmentationImage(obs[f"part_mask.{cam}"].astype(np.uint8), opacity=0.5,
                                         draw_order=1.0))
    if "skill_pcd" in obs:
        pcd = obs["skill_pcd"]
        colors = np.where(pcd[:, 3:4] > 0.5, TARGET_RGB, (170, 170, 170)).astype(np.uint8)
        rec.log("world/pcd", rr.Points3D(pcd[:, :3], colors=colors, radii=0.003))
    if "proprio" in obs:
        for name, sl in PROPRIO_SLICES.items():
            rec.log(f"proprio/{name}", rr.Scalars(obs["proprio"][sl]))


def _log_series_styles(rec) -> None:
    """Names and colours of every plotted series; commanded targets as points, so the measured
    curve stays readable under them."""
    import rerun as rr

    rec.log("proprio/tcp_pos", rr.SeriesLines(names=list("xyz"), colors=XYZ_RGB), static=True)
    rec.log("action/tcp_pos", rr.SeriesPoints(names=[f"{a} target" for a in "xyz"],
                                              colors=XYZ_RGB, marker_sizes=[1.0] * 3),
            static=True)
    rec.log("proprio/joints", rr.SeriesLines(names=[f"q{i + 1}" for i in range(7)]), static=True)
    rec.log("proprio/gripper_width", rr.SeriesLines(names=["width"]), static=True)
    rec.log("action/gripper", rr.SeriesPoints(names=["command"], marker_sizes=[1.0]),
            static=True)
    for entity, label in (("proprio/tcp_rot6d", "r"), ("action/rot6d", "r target ")):
        rec.log(entity, rr.SeriesLines(names=[f"{label}{i + 1}" for i in range(6)]), static=True)
    rec.log("timeline/success", rr.StateConfiguration(
        values=["running", "success"], colors=[(150, 150, 150), (60, 170, 60)]), static=True)


def _log_info(info: dict[str, Any], previous: dict[str, str], rec) -> dict[str, str]:
    """Log the skill, success, completion and the current skill's goal predicates; the state
    timeline's lanes ({entity: state}) are logged when they change. Returns the lanes."""
    import rerun as rr

    from robopolicy.viewer.captions import skill_caption

    lanes = {"timeline/skill": skill_caption(info),
             "timeline/success": "success" if info["success"] else "running"}
    lanes |= {lane: "" for lane in previous if lane.startswith(PREDICATES)}  # skill ended
    for name, value in info.get("predicates", {}).items():
        lanes[PREDICATES + rr.escape_entity_path_part(str(name))] = str(bool(value)).lower()
    for lane, state in lanes.items():
        if previous.get(lane) == state:
            continue
        if lane.startswith(PREDICATES) and lane not in previous:
            rec.log(lane, rr.StateConfiguration(
                values=list(PREDICATE_STATES), labels=[v[0] for v in PREDICATE_STATES.values()],
                colors=[v[1] for v in PREDICATE_STATES.values()],
                visible=[bool(v) for v in PREDICATE_STATES]), static=True)
        rec.log(lane, rr.StateChange(state=state))
        if lane == "timeline/skill":
            rec.log("skill/instruction", rr.TextLog(state))
    rec.log("status/success", rr.Scalars(float(info["success"])))
    rec.log("status/completion", rr.Scalars(float(info["completion"])))
    return lanes


def _planner_skills(episode: Episode) -> dict[int, str]:
    """{step: caption} of a bi-level episode's planned skills, each at the step it started (the
    replay's step t is the state after t actions, as the director counts them)."""
    from sims.partmanip.skill_source import call_from_dict

    skills, starts = episode.meta.get("skills") or [], episode.meta.get("skill_starts") or []
    return {min(int(start), episode.steps): f"skill {k + 1}: {call_from_dict(call)}"
            for k, (call, start) in enumerate(zip(skills, starts, strict=False))}


def _planner_replies(episode: Episode) -> dict[int, list[dict]]:
    """{step: [exchange, ...]} of the episode's planner log, at the step each was asked at (an
    exchange without one, at the episode's start)."""
    out: dict[int, list[dict]] = {}
    for exchange in episode.planner_log:
        step = min(max(int(exchange.get("step") or 0), 0), episode.steps)
        out.setdefault(step, []).append(exchange)
    return out


def _log_planner(skill: str | None, exchanges, rec) -> None:
    """The planner's lane when its skill changes, and its replies as text (warnings when the
    answer was invalid)."""
    import rerun as rr

    if skill is not None:
        rec.log("timeline/planner", rr.StateChange(state=skill))
    for exchange in exchanges:
        outcome = str(exchange.get("outcome", "ok"))
        text = (f"{exchange.get('mode', '?')} (attempt {exchange.get('attempt', 0)}, {outcome}): "
                f"{exchange.get('answer', '')}")
        rec.log("planner/reply", rr.TextLog(text, level="INFO" if outcome == "ok" else "WARN"))


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
