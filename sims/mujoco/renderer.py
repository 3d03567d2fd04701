"""Headless offscreen rendering of RGB, depth and segmentation for MuJoCo cameras.

One render pass gives RGB and depth together (read from the same framebuffer); segmentation
needs a second pass with ID colours. Create it inside the process that uses it: GL contexts do
not survive a fork.
"""

from __future__ import annotations

import os

import mujoco
import numpy as np


def _gl_context(width: int, height: int):
    """A GL context for the backend named by MUJOCO_GL, chosen now rather than when mujoco was
    imported (so `import mujoco` before `import sims.mujoco` still renders headless)."""
    backend = os.environ.get("MUJOCO_GL", "").lower()
    if backend == "egl":
        from mujoco.egl import GLContext
    elif backend == "osmesa":
        from mujoco.osmesa import GLContext
    else:
        GLContext = mujoco.GLContext
    return GLContext(width, height)


class Renderer:
    """Renders named cameras of one model at one resolution, shadows and reflections off."""

    def __init__(self, model: mujoco.MjModel, width: int, height: int, shadows: bool = False):
        self.model = model
        self.width, self.height = width, height
        self._gl = _gl_context(width, height)
        self._gl.make_current()
        self._con = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_100.value)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN.value, self._con)
        self._con.readDepthMap = mujoco.mjtDepthMap.mjDEPTH_ZEROFAR
        self._scene = mujoco.MjvScene(model, maxgeom=2000)
        self._scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = shadows
        self._scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
        self._scene.flags[mujoco.mjtRndFlag.mjRND_SKYBOX] = False
        self._option = mujoco.MjvOption()
        self._camera = mujoco.MjvCamera()
        self._camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._rect = mujoco.MjrRect(0, 0, width, height)
        extent = model.stat.extent
        self._near = np.float32(model.vis.map.znear * extent)
        self._far = np.float32(model.vis.map.zfar * extent)
        self._rgb = np.empty((height, width, 3), np.uint8)
        self._depth = np.empty((height, width), np.float32)

    def render(self, data: mujoco.MjData, camera: str, rgb: bool = True, depth: bool = False,
               segmentation: bool = False):
        """Return (rgb uint8 (H,W,3) | None, depth metres (H,W) | None, geom ids (H,W) | None).

        Segmentation pixels hold the geom id, -1 where no geom is seen.
        """
        cam_id = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
        if cam_id < 0:
            raise KeyError(f"no camera named {camera!r}")
        self._camera.fixedcamid = cam_id
        self._gl.make_current()
        mujoco.mjv_updateScene(self.model, data, self._option, None, self._camera,
                               mujoco.mjtCatBit.mjCAT_ALL.value, self._scene)
        out_rgb = out_depth = out_seg = None
        if rgb or depth:
            mujoco.mjr_render(self._rect, self._scene, self._con)
            mujoco.mjr_readPixels(self._rgb if rgb else None, self._depth if depth else None,
                                  self._rect, self._con)
            if rgb:
                out_rgb = np.flipud(self._rgb).copy()
            if depth:
                out_depth = self._linear_depth(np.flipud(self._depth))
        if segmentation:
            out_seg = self._segmentation()
        return out_rgb, out_depth, out_seg

    def _linear_depth(self, zbuf: np.ndarray) -> np.ndarray:
        # MuJoCo renders with reversed Z; undo the perspective projection (float64 for precision).
        near, far = self._near, self._far
        c = np.float32(-0.5) * (-(far + near) / (far - near)) - np.float32(0.5)
        d = np.float32(-0.5) * (-(np.float32(2) * far * near) / (far - near))
        return (d / (zbuf.astype(np.float64) + c)).astype(np.float32)

    def _segmentation(self) -> np.ndarray:
        flags = self._scene.flags
        flags[mujoco.mjtRndFlag.mjRND_SEGMENT] = True
        flags[mujoco.mjtRndFlag.mjRND_IDCOLOR] = True
        try:
            mujoco.mjr_render(self._rect, self._scene, self._con)
            mujoco.mjr_readPixels(self._rgb, None, self._rect, self._con)
        finally:
            flags[mujoco.mjtRndFlag.mjRND_SEGMENT] = False
            flags[mujoco.mjtRndFlag.mjRND_IDCOLOR] = False
        img = np.flipud(self._rgb).astype(np.int32)
        segid = img[..., 0] + (img[..., 1] << 8) + (img[..., 2] << 16)
        n = self._scene.ngeom
        lut = np.full(n + 1, -1, np.int32)
        for g in self._scene.geoms[:n]:
            if g.segid >= 0 and g.objtype == mujoco.mjtObj.mjOBJ_GEOM:
                lut[g.segid + 1] = g.objid
        return lut[np.clip(segid, 0, n)]

    def upload_texture(self, tex_id: int) -> None:
        """Copy texture `tex_id`'s pixels from the model to this renderer's GL context (after
        the model's `tex_data` changed)."""
        self._gl.make_current()
        mujoco.mjr_uploadTexture(self.model, self._con, tex_id)

    def close(self) -> None:
        """Free the GL resources."""
        if self._gl is not None:
            self._gl.make_current()
            self._con.free()
            self._gl.free()
            self._gl = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
