"""An episode's camera images rendered from its instance's fitted Gaussian scene, posed per step
from the store's records (`posing`): robot links follow the joints, object parts the object's
pose and articulation, the table and floor stay.

The fitted scene (`fit_cache.fitted_instance`, fitted once per instance and cached) lies in the
world frame at the suite's reset state; the posing of that state is the reference every step's
motion is taken from. Cameras are the env's (`default_cameras` at the store's image size): a
world-fixed one as specified, one riding a robot body (the wrist) with that body's posed frame;
a camera given explicitly (a jittered agentview) replaces the env's.

Keys rendered per camera: ``rgb.<cam>`` (uint8), ``depth.<cam>`` (the expected depth,
`MAX_DEPTH` where no Gaussian is seen) and ``part_mask.<cam>`` (the current skill's target part,
from the episode's ``chain`` and ``skill_starts``; a spatial part masks the whole object, as the
env does). With the point-cloud camera (agentview) moved, ``pcd`` and ``skill_pcd`` (the
object's points seen by it, robot base frame; the target-part flag) are rendered too, from the
Gaussians' depth and segments, like the env's; with it unmoved the simulator's are exact and the
caller keeps them. Every other key is left to the caller.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from robopolicy.augment.camera import PinholeCamera
from robopolicy.augment.posing import Pose, RecordedState, ScenePosing, motions
from robopolicy.augment.render import render
from robopolicy.augment.scene import GaussianScene

IMAGE_KINDS = ("rgb", "depth", "part_mask")


@dataclass
class FrameParams:
    """How Gaussian frames are made (an augmenter's ``params`` hold these too)."""

    fit: dict[str, Any] | None = None
    """`FitConfig` overrides (iterations, size, per_m2, ...): the fit is cached per instance
    and per these settings."""
    fit_cache_dir: str | None = None
    """The fit cache (None: ``~/.cache/robopolicy/gaussians``)."""

    def fit_config(self):
        from robopolicy.augment.fit import FitConfig

        return FitConfig(**(self.fit or {}))


def image_keys(keys) -> dict[str, list[str]]:
    """{camera: [kinds]} of a store's image keys (``rgb.<cam>``, ``depth.<cam>``,
    ``part_mask.<cam>``)."""
    out: dict[str, list[str]] = {}
    for key in keys:
        kind, _, cam = key.partition(".")
        if kind in IMAGE_KINDS and cam:
            out.setdefault(cam, []).append(kind)
    return out


def env_cameras(image_size: tuple[int, int]) -> dict:
    """{name: CameraSpec} of the env's cameras at `image_size` (width, height; a store's
    ``env_config["env"]["image_size"]``)."""
    from sims.partmanip.env_config import default_cameras

    w, h = image_size
    return {c.name: c for c in default_cameras(int(w), int(h))}


def camera_to_dict(camera: PinholeCamera) -> dict:
    """JSON-ready (the ``cameras`` episode metadata): pos, rot (3x3, rows), fovy_deg, width,
    height. The intrinsics follow: focal `camera.focal_px`, principal point at the centre."""
    return {"pos": [float(v) for v in camera.pos],
            "rot": [[float(v) for v in row] for row in np.asarray(camera.rot)],
            "fovy_deg": float(camera.fovy_deg), "width": int(camera.width),
            "height": int(camera.height)}


def camera_from_dict(d: Mapping) -> PinholeCamera:
    return PinholeCamera(np.asarray(d["pos"], float), np.asarray(d["rot"], float),
                         float(d["fovy_deg"]), int(d["width"]), int(d["height"]))


def episode_cameras(meta: Mapping) -> dict[str, PinholeCamera]:
    """The cameras an episode's ``cameras`` metadata records ({} : the env's own)."""
    return {k: camera_from_dict(v) for k, v in json.loads(meta.get("cameras") or "{}").items()}


def spec_camera(spec, poses: Mapping[str, Pose]) -> PinholeCamera:
    """The `PinholeCamera` of a CameraSpec at one step: a camera on a robot body moves with the
    body's pose in `poses` (segment ``robot/<body>``)."""
    from sims.core.camera import spec_rotation

    pos, rot = np.asarray(spec.pos, float), spec_rotation(spec)
    if spec.body is not None:
        r_b, t_b = poses[f"robot/{spec.body}"]
        pos, rot = r_b @ pos + t_b, r_b @ rot
    return PinholeCamera(pos, rot, float(spec.fovy_deg), int(spec.width), int(spec.height))


def target_parts(meta: Mapping, length: int) -> list[str | None]:
    """The current skill's target part at each of an episode's steps (None: no part), from its
    ``chain`` and ``skill_starts`` metadata."""
    chain = json.loads(meta.get("chain") or "[]")
    starts = json.loads(meta.get("skill_starts") or "[0]")
    parts = [c.get("params", {}).get("part") for c in chain] or [None]
    out, k = [], 0
    for t in range(length):
        while k + 1 < len(starts) and starts[k + 1] <= t:
            k += 1
        out.append(parts[min(k, len(parts) - 1)])
    return out


class GaussianFrames:
    """Renders the camera images of episodes of one object instance (build once per instance:
    the fit is read from the cache or made, and the reference state is taken)."""

    def __init__(self, category: str, instance: int, params: FrameParams | None = None) -> None:
        from robopolicy.augment.fit_cache import fitted_instance
        from robopolicy.augment.from_sim import sim_backend

        self.params = params or FrameParams()
        config = self.params.fit_config()
        fit = fitted_instance(category, instance, config, self.params.fit_cache_dir)
        self.scene: GaussianScene = fit.scene
        self.raster = config.raster_params()
        self.posing = ScenePosing(category, instance)
        self.object = self.posing.asset.name
        backend = sim_backend(category, instance, (16, 16))
        try:  # the state the fit saw, read back as a store records it
            self.reference = self.posing.poses(_recorded_state(backend, self.object))
        finally:
            backend.close()
        self.scene = _clear_footprint(self.scene, self.object)
        # only the robot and the object move: the table and the floor (most of the Gaussians)
        # are left out of the per-step transform
        names = set(self.scene.segments.values())
        moving = sorted(k for k in self.reference if k in names and k != "table")
        self.reference = {k: self.reference[k] for k in moving}
        self._moving = torch.nonzero(self.scene.mask(moving))[:, 0]

    def posed(self, poses: Mapping[str, Pose], scene: GaussianScene | None = None
              ) -> GaussianScene:
        """`scene` (default: the fitted one; it lies in the reference state) moved to the
        segment `poses` of one step (`ScenePosing.poses`)."""
        scene = scene or self.scene
        mi = self._moving
        moving = GaussianScene(scene.means[mi], scene.quats_wxyz[mi], scene.log_scales[mi],
                               scene.opacity_logits[mi], scene.sh_dc[mi], scene.segment_ids[mi],
                               dict(scene.segments))
        moved = moving.posed(motions({k: poses[k] for k in self.reference}, self.reference))
        means, quats = scene.means.clone(), scene.quats_wxyz.clone()
        means[mi], quats[mi] = moved.means, moved.quats_wxyz
        return GaussianScene(means, quats, scene.log_scales, scene.opacity_logits, scene.sh_dc,
                             scene.segment_ids, dict(scene.segments), scene.sh_rest)

    def part_ids(self, part: str | None) -> list[int]:
        """Segment ids of a target part's mask (a spatial part: every part of the object)."""
        if part is None:
            return []
        name = f"{self.object}/{part}" if part in self.posing.asset.parts else self.object
        return self.scene.segment_ids_of(name)

    def render_episode(self, records: Mapping[str, np.ndarray], meta: Mapping,
                       keys, image_size: tuple[int, int], scene: GaussianScene | None = None,
                       cameras: Mapping[str, PinholeCamera] | None = None,
                       ) -> dict[str, np.ndarray]:
        """The image `keys` (those of them that are image keys) of an episode whose records
        (``robot_joints``, ``object_pose``, ``articulation``) and metadata (``chain``,
        ``skill_starts``) are given, rendered from `scene` (default: the fitted one; a
        recoloured copy for lighting) and the env's cameras at `image_size` (width, height), or
        `cameras` where named."""
        from sims.partmanip.spaces import MAX_DEPTH

        wanted = image_keys(keys)
        specs = env_cameras(image_size)
        unknown = sorted(set(wanted) - set(specs) - set(cameras or {}))
        if unknown:
            raise KeyError(f"no camera {unknown} in the env (have {sorted(specs)})")
        length = len(records["robot_joints"])
        parts = target_parts(meta, length)
        out = {f"{k}.{c}": [] for c, kinds in wanted.items() for k in kinds}
        clouds = _CloudKeys(self, keys, records, cameras)
        renders = {**wanted, **({clouds.camera_name: wanted.get(clouds.camera_name, [])}
                                if clouds.keys else {})}
        with torch.no_grad():
            for t in range(length):
                state = RecordedState(records["robot_joints"][t], records["object_pose"][t],
                                      records["articulation"][t])
                poses = self.posing.poses(state)
                posed = self.posed(poses, scene)
                for cam, kinds in renders.items():
                    camera = (cameras or {}).get(cam) or spec_camera(specs[cam], poses)
                    cloud = bool(clouds.keys) and cam == clouds.camera_name
                    r = render(posed, camera, params=self.raster,
                               segments="part_mask" in kinds or cloud)
                    if "rgb" in kinds:
                        rgb = (r.rgb.clamp(0, 1) * 255).round().to(torch.uint8)
                        out[f"rgb.{cam}"].append(rgb.cpu().numpy())
                    if "depth" in kinds:
                        seen = r.alpha > 0.5
                        depth = torch.where(seen, r.depth, torch.full_like(r.depth, MAX_DEPTH))
                        out[f"depth.{cam}"].append(
                            depth.clamp(max=MAX_DEPTH).cpu().numpy().astype(np.float32))
                    if "part_mask" in kinds:
                        ids = torch.tensor(self.part_ids(parts[t]), device=r.segment.device)
                        out[f"part_mask.{cam}"].append(torch.isin(r.segment, ids).cpu().numpy())
                    if cloud:
                        clouds.add(r, parts[t], out)
        return {k: np.stack(v) for k, v in out.items()}


class _CloudKeys:
    """The point-cloud keys `render_episode` renders: ``pcd`` / ``skill_pcd`` of the records,
    when the caller moves the env's point-cloud camera (otherwise none)."""

    def __init__(self, frames: GaussianFrames, keys, records: Mapping[str, np.ndarray],
                 cameras: Mapping[str, PinholeCamera] | None) -> None:
        from sims.core.camera import pixel_rays
        from sims.partmanip.env_config import PCD_CAMERA

        self.frames, self.camera_name = frames, PCD_CAMERA
        camera = (cameras or {}).get(PCD_CAMERA)
        self.keys = [k for k in ("pcd", "skill_pcd") if k in keys and k in records] if camera else []
        if self.keys:
            self.n_points = int(records[self.keys[0]].shape[1])
            self.origin = np.asarray(camera.pos, float)
            self.rays = pixel_rays(self.origin, camera.rot, camera.fovy_deg, camera.width,
                                   camera.height)
            self.object_ids = torch.tensor(frames.scene.segment_ids_of(frames.object))

    def add(self, r, part: str | None, out: dict[str, list]) -> None:
        """One step's clouds from the point-cloud camera's render `r` (with segments)."""
        from sims.partmanip.pointcloud import depth_cloud
        from sims.partmanip.spaces import PCD_WORKSPACE

        keep = (r.alpha > 0.5) & torch.isin(r.segment, self.object_ids)
        keep &= ~_flying(r.depth, keep)
        flag = torch.isin(r.segment, torch.tensor(self.frames.part_ids(part)))
        cloud = depth_cloud(self.origin, self.rays, r.depth.cpu().numpy().astype(float),
                            keep.cpu().numpy(), flag.cpu().numpy(), self.n_points, PCD_WORKSPACE)
        if "pcd" in self.keys:
            out.setdefault("pcd", []).append(np.ascontiguousarray(cloud[:, :3]))
        if "skill_pcd" in self.keys:
            out.setdefault("skill_pcd", []).append(cloud)


def _flying(depth: torch.Tensor, mask: torch.Tensor, step_m: float = 0.02) -> torch.Tensor:
    """Pixels of `mask` lying more than `step_m` behind the median depth of the masked pixels
    around them (3x3): on a silhouette the expected depth blends the object with what lies
    behind it, and farthest-point sampling would pick those stray points first. (The median
    keeps a surface seen beside a thin part in front of it.)"""
    near = torch.where(mask, depth, torch.full_like(depth, float("nan")))
    patches = torch.nn.functional.unfold(near[None, None], 3, padding=1)[0]  # (9, H*W)
    median = patches.nanmedian(0).values.reshape(depth.shape)
    return mask & (depth > median + step_m)


def _clear_footprint(scene: GaussianScene, obj: str, margin_m: float = 0.01,
                     ring_m: float = 0.04) -> GaussianScene:
    """`scene` with the table Gaussians under the object (within `margin_m` of an object
    Gaussian, in plan) recoloured like the table around it (those between `margin_m` and
    `ring_m`): the fit's views never see them, or see the object's rim blended into them,
    and once the object moves they would show its footprint where it stood."""
    table = scene.mask("table")
    obj_xy = scene.select(obj).means[:, :2]
    lo, hi = obj_xy.min(0).values - ring_m, obj_xy.max(0).values + ring_m
    near = table & (scene.means[:, :2] >= lo).all(1) & (scene.means[:, :2] <= hi).all(1)
    index = torch.nonzero(near)[:, 0]
    if len(index) == 0:
        return scene
    dist = torch.cdist(scene.means[index, :2], obj_xy[:: max(1, len(obj_xy) // 4000)]).min(1).values
    under, ring = index[dist < margin_m], index[(dist >= margin_m) & (dist < ring_m)]
    if len(under) == 0 or len(ring) == 0:
        return scene
    dc, opacity, scales = (scene.sh_dc.clone(), scene.opacity_logits.clone(),
                           scene.log_scales.clone())
    dc[under] = scene.sh_dc[ring].median(0).values
    opacity[under] = scene.opacity_logits[ring].median()
    scales[under] = scene.log_scales[ring].median(0).values
    return GaussianScene(scene.means, scene.quats_wxyz, scales, opacity, dc, scene.segment_ids,
                         dict(scene.segments), scene.sh_rest)


def _recorded_state(backend, name: str) -> RecordedState:
    from sims.partmanip.obs_layout import ARTICULATION_RECORD_DIM

    joints = np.append(backend.arm_joint_positions(), backend.gripper_width())
    art = np.zeros(ARTICULATION_RECORD_DIM)
    q = backend.object_joint_positions(name)
    art[: len(q)] = q
    return RecordedState(joints, np.concatenate(backend.object_pose(name)), art)


class FrameCache:
    """`GaussianFrames` per (category, instance), built on first use."""

    def __init__(self, params: FrameParams) -> None:
        self.params = params
        self._frames: dict[tuple[str, int], GaussianFrames] = {}

    def get(self, category: str, instance: int) -> GaussianFrames:
        key = (category, int(instance))
        if key not in self._frames:
            self._frames[key] = GaussianFrames(category, int(instance), self.params)
        return self._frames[key]
