"""A scene of 3-D Gaussians with a segment per Gaussian (a robot link, an object part, the
table), built from meshes by surface sampling and posed segment by segment.

Parameters are stored before activation, as in 3DGS: log scales (exp), opacity logits
(sigmoid), quaternions w-first (normalised by the renderer) and SH colour coefficients (degree
0, optionally degree 1-3 rest). Positions in metres in the world frame (or in a segment's own
frame before it is posed). Every method returns a new scene built with differentiable torch
ops, so poses and colours can be optimised through it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from robopolicy.augment.sh import rgb_to_dc


@dataclass
class MeshSampling:
    """How `GaussianScene.from_meshes` turns a surface into flat Gaussian discs."""

    per_m2: float = 40_000.0
    """Gaussians per square metre of surface (area-weighted random samples)."""
    sigma_per_spacing: float = 0.6
    """In-plane standard deviation of a disc, in units of the mean sample spacing 1/sqrt(per_m2):
    large enough for neighbouring discs to overlap into a closed surface."""
    thin_ratio: float = 0.05
    """The normal-direction standard deviation as a fraction of the in-plane one (flat discs)."""
    opacity: float = 0.95
    """Initial opacity of every disc."""
    seed: int = 0
    crease_deg: float | None = None
    """Discs near an edge whose faces meet at more than this angle (or an open edge) are
    squeezed across it so they end there (`creases`); None: every disc round."""
    reach_sigmas: float = 2.0
    """... a squeezed disc reaches the edge at this many standard deviations across it."""
    min_sigma_fraction: float = 0.15
    """... and is never thinner across it than this fraction of the round discs' size."""


@dataclass
class GaussianScene:
    """N Gaussians. `segments` maps a segment id (the values of `segment_ids`) to its name, e.g.
    ``{0: "robot/link3", 1: "mug/handle", 2: "table"}``; a name's "/" levels let a prefix
    ("robot") select a group of segments."""

    means: torch.Tensor
    """(N, 3) centres, metres."""
    quats_wxyz: torch.Tensor
    """(N, 4) rotations, w first (need not be normalised)."""
    log_scales: torch.Tensor
    """(N, 3) log standard deviations along the Gaussian's own axes (log metres)."""
    opacity_logits: torch.Tensor
    """(N,) opacity before the sigmoid."""
    sh_dc: torch.Tensor
    """(N, 3) degree-0 SH colour coefficients (`sh.rgb_to_dc` of an RGB in [0, 1])."""
    segment_ids: torch.Tensor
    """(N,) int64 segment of each Gaussian (a key of `segments`)."""
    segments: dict[int, str] = field(default_factory=dict)
    sh_rest: torch.Tensor | None = None
    """(N, K, 3) SH coefficients of degrees 1..3 (K = 3, 8 or 15), or None (degree 0)."""

    def __post_init__(self):
        n = self.means.shape[0]
        shapes = {"means": (self.means, (n, 3)), "quats_wxyz": (self.quats_wxyz, (n, 4)),
                  "log_scales": (self.log_scales, (n, 3)),
                  "opacity_logits": (self.opacity_logits, (n,)), "sh_dc": (self.sh_dc, (n, 3)),
                  "segment_ids": (self.segment_ids, (n,))}
        for name, (tensor, shape) in shapes.items():
            if tuple(tensor.shape) != shape:
                raise ValueError(f"GaussianScene.{name}: shape {tuple(tensor.shape)}, want {shape}")
        if self.sh_rest is not None and (self.sh_rest.ndim != 3 or self.sh_rest.shape[0] != n
                                         or self.sh_rest.shape[2] != 3):
            raise ValueError(f"GaussianScene.sh_rest: shape {tuple(self.sh_rest.shape)}, "
                             f"want ({n}, K, 3)")

    def __len__(self) -> int:
        return int(self.means.shape[0])

    # ---- segments --------------------------------------------------------------------------

    def segment_id(self, name: str) -> int:
        """The id of the segment called `name`."""
        for sid, sname in self.segments.items():
            if sname == name:
                return sid
        raise KeyError(f"no segment {name!r} (have {sorted(self.segments.values())})")

    def segment_ids_of(self, names: str | Iterable[str]) -> list[int]:
        """Ids of the segments named `names` or below them ("robot" selects "robot/link3")."""
        names = [names] if isinstance(names, str) else list(names)
        ids = [sid for sid, sname in self.segments.items()
               if any(sname == n or sname.startswith(n + "/") for n in names)]
        if not ids:
            raise KeyError(f"no segment matches {names} (have {sorted(self.segments.values())})")
        return sorted(ids)

    def mask(self, names: str | Iterable[str]) -> torch.Tensor:
        """(N,) bool: the Gaussians of the segments `names` (and those below them)."""
        ids = torch.tensor(self.segment_ids_of(names), device=self.segment_ids.device)
        return torch.isin(self.segment_ids, ids)

    def select(self, names: str | Iterable[str]) -> GaussianScene:
        """The Gaussians of the segments `names` (and those below them); ids are kept."""
        keep = self.mask(names)
        kept = {sid: self.segments[sid] for sid in self.segment_ids_of(names)}
        return self._take(keep, kept)

    def _take(self, index: torch.Tensor, segments: dict[int, str]) -> GaussianScene:
        return GaussianScene(
            self.means[index], self.quats_wxyz[index], self.log_scales[index],
            self.opacity_logits[index], self.sh_dc[index], self.segment_ids[index],
            dict(segments), None if self.sh_rest is None else self.sh_rest[index])

    @staticmethod
    def concat(scenes: Iterable[GaussianScene]) -> GaussianScene:
        """One scene of all of `scenes`' Gaussians. Segments are merged by name: the first
        scene keeps its ids, a later segment takes the id its name already has or a new one."""
        scenes = list(scenes)
        if not scenes:
            raise ValueError("GaussianScene.concat of no scenes")
        table = dict(scenes[0].segments)
        by_name = {name: sid for sid, name in table.items()}
        seg_parts = [scenes[0].segment_ids]
        for scene in scenes[1:]:
            remap = {}
            for sid, name in scene.segments.items():
                if name not in by_name:
                    by_name[name] = max(table, default=-1) + 1
                    table[by_name[name]] = name
                remap[sid] = by_name[name]
            lut = torch.zeros(max(scene.segments, default=0) + 1, dtype=torch.int64)
            for old, new in remap.items():
                lut[old] = new
            seg_parts.append(lut.to(scene.segment_ids.device)[scene.segment_ids])
        degrees = {None if s.sh_rest is None else s.sh_rest.shape[1] for s in scenes}
        if len(degrees) > 1:
            k = max(d or 0 for d in degrees)
            rests = [s.sh_rest if s.sh_rest is not None and s.sh_rest.shape[1] == k else
                     _pad_rest(s.sh_rest, len(s), k, s.means) for s in scenes]
        else:
            rests = None if degrees == {None} else [s.sh_rest for s in scenes]
        cat = torch.cat
        return GaussianScene(
            cat([s.means for s in scenes]), cat([s.quats_wxyz for s in scenes]),
            cat([s.log_scales for s in scenes]), cat([s.opacity_logits for s in scenes]),
            cat([s.sh_dc for s in scenes]), cat(seg_parts), table,
            None if rests is None else cat(rests))

    # ---- posing ----------------------------------------------------------------------------

    def transform(self, rot: torch.Tensor | np.ndarray, trans: torch.Tensor | np.ndarray,
                  names: str | Iterable[str] | None = None) -> GaussianScene:
        """The scene with the Gaussians of segments `names` (all when None) moved rigidly:
        x -> rot @ x + trans (rot (3, 3), trans (3,), metres). Higher-degree SH coefficients are
        not rotated (their view-dependent colour keeps its world direction)."""
        rot = torch.as_tensor(rot, dtype=self.means.dtype, device=self.means.device)
        trans = torch.as_tensor(trans, dtype=self.means.dtype, device=self.means.device)
        moved_means = self.means @ rot.T + trans
        moved_quats = quat_multiply(mat_to_quat(rot)[None], self.quats_wxyz)
        if names is None:
            means, quats = moved_means, moved_quats
        else:
            m = self.mask(names)[:, None]
            means = torch.where(m, moved_means, self.means)
            quats = torch.where(m, moved_quats, self.quats_wxyz)
        return GaussianScene(means, quats, self.log_scales, self.opacity_logits, self.sh_dc,
                             self.segment_ids, dict(self.segments), self.sh_rest)

    def posed(self, poses: Mapping[str, tuple]) -> GaussianScene:
        """The scene with each segment `name` of `poses` moved by its (rot (3, 3), trans (3,))
        in one pass (e.g. every robot link from its link-frame Gaussians to its world pose)."""
        n_seg = max(self.segments, default=0) + 1
        dtype, device = self.means.dtype, self.means.device
        rots = torch.eye(3, dtype=dtype, device=device).repeat(n_seg, 1, 1)
        trans = torch.zeros(n_seg, 3, dtype=dtype, device=device)
        for name, (r, t) in poses.items():
            sid = self.segment_id(name)
            rots[sid] = torch.as_tensor(r, dtype=dtype, device=device)
            trans[sid] = torch.as_tensor(t, dtype=dtype, device=device)
        r_each = rots[self.segment_ids]
        means = (r_each @ self.means[:, :, None])[:, :, 0] + trans[self.segment_ids]
        quats = quat_multiply(mat_to_quat(rots)[self.segment_ids], self.quats_wxyz)
        return GaussianScene(means, quats, self.log_scales, self.opacity_logits, self.sh_dc,
                             self.segment_ids, dict(self.segments), self.sh_rest)

    def to(self, device: torch.device | str) -> GaussianScene:
        return GaussianScene(
            self.means.to(device), self.quats_wxyz.to(device), self.log_scales.to(device),
            self.opacity_logits.to(device), self.sh_dc.to(device), self.segment_ids.to(device),
            dict(self.segments), None if self.sh_rest is None else self.sh_rest.to(device))

    # ---- building --------------------------------------------------------------------------

    @staticmethod
    def from_meshes(meshes: Mapping[str, object], colors: Mapping[str, tuple] | None = None,
                    sampling: MeshSampling | None = None) -> GaussianScene:
        """Flat Gaussian discs on the surfaces of `meshes` ({segment name: trimesh.Trimesh or
        (vertices (V, 3), faces (F, 3))}, metres), one segment per mesh in the mapping's order,
        coloured by `colors` ({segment name: RGB in [0, 1]}, grey when missing). Samples are
        area-weighted and deterministic for `sampling.seed`."""
        import trimesh

        sampling = sampling or MeshSampling()
        colors = colors or {}
        spacing = 1.0 / np.sqrt(sampling.per_m2)
        sigma = sampling.sigma_per_spacing * spacing
        parts = []
        for index, (name, mesh) in enumerate(meshes.items()):
            if not isinstance(mesh, trimesh.Trimesh):
                vertices, faces = mesh
                mesh = trimesh.Trimesh(np.asarray(vertices, float), np.asarray(faces, np.int64),
                                       process=False)
            count = max(1, int(round(mesh.area * sampling.per_m2)))
            points, face_index = trimesh.sample.sample_surface(
                mesh, count, seed=[sampling.seed, index])
            normals = np.asarray(mesh.face_normals)[face_index]
            rgb = np.asarray(colors.get(name, (0.5, 0.5, 0.5)), np.float32)
            disc = _discs(points, normals, sigma, sampling, rgb, index, name)
            if sampling.crease_deg is not None:
                disc = _squeeze_at_creases(disc, mesh, normals, sigma, sampling)
            parts.append(disc)
        return GaussianScene.concat(parts)


def _discs(points: np.ndarray, normals: np.ndarray, sigma: float, sampling: MeshSampling,
           rgb: np.ndarray, segment: int, name: str) -> GaussianScene:
    n = len(points)
    log_sigma = np.log(sigma)
    log_scales = np.tile([log_sigma, log_sigma, log_sigma + np.log(sampling.thin_ratio)], (n, 1))
    logit = float(np.log(sampling.opacity / (1.0 - sampling.opacity)))
    return GaussianScene(
        means=torch.as_tensor(points, dtype=torch.float32),
        quats_wxyz=torch.as_tensor(_z_to(normals), dtype=torch.float32),
        log_scales=torch.as_tensor(log_scales, dtype=torch.float32),
        opacity_logits=torch.full((n,), logit, dtype=torch.float32),
        sh_dc=rgb_to_dc(torch.as_tensor(rgb)).expand(n, 3).clone(),
        segment_ids=torch.full((n,), segment, dtype=torch.int64),
        segments={segment: name})


def _squeeze_at_creases(disc: GaussianScene, mesh, normals: np.ndarray, sigma: float,
                        sampling: MeshSampling) -> GaussianScene:
    from robopolicy.augment.creases import crease_frames, crease_segments

    points = disc.means.numpy().astype(float)
    near, away, across = crease_frames(points, normals, crease_segments(mesh, sampling.crease_deg),
                                       sigma, sampling.reach_sigmas, sampling.min_sigma_fraction)
    if not near.any():
        return disc
    n = normals[near] / np.linalg.norm(normals[near], axis=1, keepdims=True)
    frame = np.stack([away, np.cross(n, away), n], axis=2)  # columns: local x, y, z
    quats, scales = disc.quats_wxyz.clone(), disc.log_scales.clone()
    index = torch.as_tensor(np.flatnonzero(near))
    quats[index] = mat_to_quat(torch.as_tensor(frame, dtype=torch.float32))
    scales[index, 0] = torch.as_tensor(np.log(across), dtype=torch.float32)
    return GaussianScene(disc.means, quats, scales, disc.opacity_logits, disc.sh_dc,
                         disc.segment_ids, dict(disc.segments), disc.sh_rest)


def _z_to(normals: np.ndarray) -> np.ndarray:
    """(N, 4) wxyz quaternions turning +z onto each unit normal (N, 3) (the disc's thin axis)."""
    n = normals / np.linalg.norm(normals, axis=1, keepdims=True)
    q = np.stack([1.0 + n[:, 2], -n[:, 1], n[:, 0], np.zeros(len(n))], axis=1)
    flipped = q[:, 0] < 1e-9  # normal along -z: half a turn about x
    q[flipped] = [0.0, 1.0, 0.0, 0.0]
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def _pad_rest(rest: torch.Tensor | None, n: int, k: int, like: torch.Tensor) -> torch.Tensor:
    out = torch.zeros(n, k, 3, dtype=like.dtype, device=like.device)
    if rest is not None:
        out[:, : rest.shape[1]] = rest
    return out


def quat_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product a * b of wxyz quaternions (..., 4) (broadcasting)."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack([aw * bw - ax * bx - ay * by - az * bz,
                        aw * bx + ax * bw + ay * bz - az * by,
                        aw * by - ax * bz + ay * bw + az * bx,
                        aw * bz + ax * by - ay * bx + az * bw], dim=-1)


def quat_to_mat(q: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation matrices of wxyz quaternions (..., 4) (normalised here)."""
    q = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    w, x, y, z = q.unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        dim=-1).reshape(*q.shape[:-1], 3, 3)


def mat_to_quat(m: torch.Tensor) -> torch.Tensor:
    """wxyz quaternions (..., 4) of rotation matrices (..., 3, 3) (Shepperd's method: the
    largest of w, x, y, z is computed first, so no branch divides by a small number)."""
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    cands = torch.stack([
        torch.stack([1 + m00 + m11 + m22, m[..., 2, 1] - m[..., 1, 2],
                     m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1),
        torch.stack([m[..., 2, 1] - m[..., 1, 2], 1 + m00 - m11 - m22,
                     m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0]], -1),
        torch.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 0, 1] + m[..., 1, 0],
                     1 - m00 + m11 - m22, m[..., 1, 2] + m[..., 2, 1]], -1),
        torch.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0],
                     m[..., 1, 2] + m[..., 2, 1], 1 - m00 - m11 + m22], -1)], -2)
    best = torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22,
                        1 - m00 - m11 + m22], -1).argmax(-1)
    q = torch.take_along_dim(cands, best[..., None, None], dim=-2)[..., 0, :]
    q = q / q.norm(dim=-1, keepdim=True)
    return q * torch.where(q[..., :1] < 0, -1.0, 1.0)
