"""The camera convention every backend, the env and the viewer share, and the one world point
<-> pixel projection.

A camera's pose is (position (3,), rotation (3, 3)) in the world (= robot base) frame; the
rotation's columns are the camera's axes: x to the image's right, y up in the image, z backwards
(the camera looks along -z; OpenGL's, MuJoCo's and rerun's RUB). `fovy_deg` spans the image
height; pixel (u, v) counts columns right and rows down from the top-left corner, pixel centres
at half-integers. Depth is the distance along the optical axis (-z), as rendered.
"""

from __future__ import annotations

import numpy as np

from sims.core.types import CameraSpec


def lookat_rotation(pos, lookat, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """(3, 3) rotation of a camera at `pos` looking at `lookat`, `up` up in the image."""
    z = np.asarray(pos, float) - np.asarray(lookat, float)
    z /= np.linalg.norm(z)
    x = np.cross(np.asarray(up, float), z)
    if np.linalg.norm(x) < 1e-6:  # looking straight along `up`
        x = np.cross(np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0]), z)
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z], axis=1)


def spec_rotation(cam: CameraSpec) -> np.ndarray:
    """(3, 3) rotation of a camera spec in its parent's frame (the world, or its `body`)."""
    if cam.lookat is not None:
        return lookat_rotation(cam.pos, cam.lookat, cam.up)
    from sims.core.rotations import quat_to_mat

    return quat_to_mat(np.asarray(cam.quat, float))


def focal_px(height: int, fovy_deg: float) -> float:
    """Focal length in pixels (square pixels)."""
    return 0.5 * height / np.tan(np.radians(fovy_deg) / 2)


def project(points: np.ndarray, pos: np.ndarray, rot: np.ndarray, fovy_deg: float,
            width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """World points (N, 3) -> pixel coordinates (N, 2) as (u, v) and depth (N,) for a camera
    at pose (`pos`, `rot`). Points behind the camera get depth <= 0 (their pixels are
    meaningless)."""
    cam = (np.asarray(points, float) - np.asarray(pos, float)) @ np.asarray(rot, float)
    depth = -cam[:, 2]
    f = focal_px(height, fovy_deg)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = width / 2 + f * cam[:, 0] / depth
        v = height / 2 - f * cam[:, 1] / depth
    return np.stack([u, v], axis=1), depth


def pixel_rays(pos: np.ndarray, rot: np.ndarray, fovy_deg: float, width: int,
               height: int) -> np.ndarray:
    """(H*W, 3) world rays through the pixel centres, row-major from the top-left pixel, scaled
    so that ``pos + depth * ray`` is the pixel's point: `project`'s inverse."""
    f = focal_px(height, fovy_deg)
    u = (np.arange(width) + 0.5 - width / 2) / f
    v = (np.arange(height) + 0.5 - height / 2) / f
    uu, vv = np.meshgrid(u, v)
    rays_cam = np.stack([uu, -vv, -np.ones_like(uu)], axis=-1).reshape(-1, 3)  # rows go down
    return rays_cam @ np.asarray(rot, float).T


def fixed_camera_rays(cam: CameraSpec) -> tuple[np.ndarray, np.ndarray]:
    """A fixed (world-frame) camera's centre (3,) and its `pixel_rays`."""
    if cam.body is not None:
        raise ValueError(f"camera {cam.name!r} rides on body {cam.body!r}; its rays move with it")
    pos = np.asarray(cam.pos, float)
    return pos, pixel_rays(pos, spec_rotation(cam), cam.fovy_deg, cam.width, cam.height)
