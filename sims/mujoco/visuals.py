"""Visual changes (`sims.core.perturb`) applied to a compiled MuJoCo model at run time.

Lights, cameras, geom colours and material texture repeats are model fields that every render
reads afresh; texture pixels live on the GL side too, so a renderer re-uploads those it has
(a renderer made later uploads the model's current pixels itself).
"""

from __future__ import annotations

import mujoco
import numpy as np

from sims.core.perturb import AppearanceChange, CameraChange, LightingChange, VisualChange
from sims.core.rotations import mat_to_quat
from sims.mujoco.scene import FLOOR_GEOM, TABLE_GEOM, TEXTURED_GEOMS

_LIGHT = "top"  # the scene's main light (sims.mujoco.scene)


class ModelVisuals:
    """The nominal look of one model (saved when it is made) and the change applied now."""

    def __init__(self, model: mujoco.MjModel):
        m = self.model = model
        self._light = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_LIGHT, _LIGHT)
        self._geoms = {g: mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, g) for g in TEXTURED_GEOMS}
        self._mats = {g: mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_MATERIAL, g) for g in TEXTURED_GEOMS}
        self._texs = {g: mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_TEXTURE, g) for g in TEXTURED_GEOMS}
        self._nominal = {
            "light_dir": m.light_dir.copy(), "light_diffuse": m.light_diffuse.copy(),
            "light_specular": m.light_specular.copy(),
            "head_ambient": m.vis.headlight.ambient.copy(),
            "head_diffuse": m.vis.headlight.diffuse.copy(),
            "cam_pos": m.cam_pos.copy(), "cam_quat": m.cam_quat.copy(),
            "geom_rgba": m.geom_rgba.copy(), "mat_texrepeat": m.mat_texrepeat.copy(),
            "tex_data": m.tex_data.copy(),
        }
        self.current: VisualChange | None = None

    def apply(self, change: VisualChange | None) -> list[int]:
        """Restore the nominal look, then apply `change` (None: nominal); returns the texture
        ids whose pixels changed (the renderers must upload them)."""
        m, n = self.model, self._nominal
        textures_dirty = isinstance(self.current, AppearanceChange)
        m.light_dir[:], m.light_diffuse[:], m.light_specular[:] = (
            n["light_dir"], n["light_diffuse"], n["light_specular"])
        m.vis.headlight.ambient[:], m.vis.headlight.diffuse[:] = n["head_ambient"], n["head_diffuse"]
        m.cam_pos[:], m.cam_quat[:] = n["cam_pos"], n["cam_quat"]
        m.geom_rgba[:], m.mat_texrepeat[:] = n["geom_rgba"], n["mat_texrepeat"]
        if textures_dirty:
            m.tex_data[:] = n["tex_data"]
        if isinstance(change, LightingChange):
            i = self._light
            m.light_dir[i] = np.asarray(change.direction) / np.linalg.norm(change.direction)
            m.light_diffuse[i], m.light_specular[i] = change.diffuse, change.specular
            m.vis.headlight.ambient[:] = change.ambient
            m.vis.headlight.diffuse[:] = change.headlight_diffuse
        elif isinstance(change, CameraChange):
            cid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_CAMERA, change.camera)
            if cid < 0:
                raise ValueError(f"camera perturbation: no camera named {change.camera!r}")
            if m.cam_bodyid[cid] != 0:
                raise ValueError(f"camera perturbation: camera {change.camera!r} rides on a "
                                 "body; only fixed (world) cameras move")
            m.cam_pos[cid] = change.pos
            m.cam_quat[cid] = mat_to_quat(np.asarray(change.rot, float))
        elif isinstance(change, AppearanceChange):
            for geom, rgba, tex in ((TABLE_GEOM, change.table_rgba, change.table_texture),
                                    (FLOOR_GEOM, change.floor_rgba, change.floor_texture)):
                self._set_texture(self._texs[geom], tex)
                m.geom_rgba[self._geoms[geom]] = rgba
                m.mat_texrepeat[self._mats[geom]] = 1.0 / change.tile_m
            textures_dirty = True
        elif change is not None:
            raise TypeError(f"not a visual change: {change!r}")
        self.current = change
        return list(self._texs.values()) if textures_dirty else []

    def _set_texture(self, tex_id: int, pixels: np.ndarray) -> None:
        m = self.model
        w, h, c = m.tex_width[tex_id], m.tex_height[tex_id], m.tex_nchannel[tex_id]
        pixels = np.asarray(pixels)
        if pixels.shape != (h, w, c) or pixels.dtype != np.uint8:
            raise ValueError(f"appearance texture: {pixels.dtype} {pixels.shape}, the model's "
                             f"is uint8 {(h, w, c)}")
        adr = m.tex_adr[tex_id]
        m.tex_data[adr:adr + h * w * c] = pixels.reshape(-1)
