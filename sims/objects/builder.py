"""ObjectBuilder: the small vocabulary every category generator is written in.

A generator draws its parameters from the category spec, adds bodies (hinged or sliding parts
get their own body whose origin is the joint axis point) and labelled geoms, and calls
`finish()`, which samples each part's surface point cloud and returns the ObjectAsset. A part
may span bodies (the two blades of scissors live on the two halves).

Collision geometry must be convex pieces (primitives, or meshes MuJoCo and PyBullet will
treat as their convex hull); finer meshes go in as visual-only geoms.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from sims.core.types import IDENTITY_QUAT, BodySpec, GeomSpec, JointSpec, ObjectAsset, Part
from sims.objects.geometry import (
    capsule_between,
    draw_params,
    inside_geom,
    instance_rng,
    load_category_spec,
    quat_from_z,
    sample_surface,
)

BURIED_MARGIN = 0.0008  # points deeper than this inside another geom are not on the surface


class ObjectBuilder:
    """Accumulates the bodies, geoms and meshes of one instance of a category.

    `p` holds the parameters drawn from the spec's `params` ranges, `rng` continues the
    instance's random stream for discrete choices (shapes, colours).
    """

    def __init__(self, category: str, instance_id: int):
        self.category = category
        self.instance_id = int(instance_id)
        self.spec = load_category_spec(category)
        self.rng = instance_rng(category, self.instance_id)
        self.p = draw_params(self.spec, self.rng)
        self.bodies: list[BodySpec] = [BodySpec("base")]
        self.geoms: list[GeomSpec] = []
        self.meshes: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.extra: dict[str, float] = {}
        self._names: Counter[str] = Counter()

    # -- discrete choices ---------------------------------------------------------------------
    def choice(self, key: str):
        """One entry of the spec's list `key`, drawn from the instance's random stream."""
        options = self.spec[key]
        return options[int(self.rng.integers(len(options)))]

    def rgba(self, key: str = "colors", alpha: float = 1.0) -> tuple[float, float, float, float]:
        """A colour drawn from the spec's list `key` of rgb triples."""
        return (*map(float, self.choice(key)), alpha)

    # -- bodies -------------------------------------------------------------------------------
    def body(self, name: str, parent: str = "base", pos=(0.0, 0.0, 0.0), quat=IDENTITY_QUAT,
             hinge_axis=None, slide_axis=None, range=(0.0, 0.0), damping: float = 0.05,
             frictionloss: float = 0.0) -> str:
        """Add a body (frame at `pos`/`quat` in `parent`), jointed to its parent by a hinge about
        `hinge_axis` or a slide along `slide_axis` through its origin, or welded if neither."""
        joint = None
        if hinge_axis is not None or slide_axis is not None:
            kind, axis = ("hinge", hinge_axis) if hinge_axis is not None else ("slide", slide_axis)
            axis = np.asarray(axis, float) / np.linalg.norm(axis)
            joint = JointSpec(f"{name}_joint", kind, tuple(float(a) for a in axis),
                              (float(range[0]), float(range[1])), damping=damping,
                              frictionloss=frictionloss)
        if name in {b.name for b in self.bodies}:
            raise ValueError(f"{self.category}: duplicate body {name!r}")
        self.bodies.append(BodySpec(name, parent, _vec(pos), _quat(quat), joint))
        return name

    # -- geoms --------------------------------------------------------------------------------
    def _name(self, part: str) -> str:
        n = self._names[part]
        self._names[part] += 1
        return f"{part}_{n}"

    def add(self, g: GeomSpec) -> GeomSpec:
        self.geoms.append(g)
        return g

    def box(self, part: str, half, pos=(0.0, 0.0, 0.0), quat=IDENTITY_QUAT, **kw) -> GeomSpec:
        """A box with half-extents `half`."""
        return self.add(GeomSpec(self._name(part), "box", _vec(half), part, pos=_vec(pos),
                                 quat=_quat(quat), **kw))

    def cylinder(self, part: str, radius: float, half_len: float, pos=(0.0, 0.0, 0.0),
                 axis=(0.0, 0.0, 1.0), **kw) -> GeomSpec:
        """A cylinder whose axis runs along `axis` through `pos`."""
        return self.add(GeomSpec(self._name(part), "cylinder", (float(radius), float(half_len)),
                                 part, pos=_vec(pos), quat=quat_from_z(axis), **kw))

    def capsule(self, part: str, p0, p1, radius: float, **kw) -> GeomSpec:
        """A capsule whose segment runs from p0 to p1."""
        return self.add(capsule_between(self._name(part), p0, p1, float(radius), part, **kw))

    def sphere(self, part: str, radius: float, pos=(0.0, 0.0, 0.0), **kw) -> GeomSpec:
        return self.add(GeomSpec(self._name(part), "sphere", (float(radius),), part, pos=_vec(pos),
                                 **kw))

    def ellipsoid(self, part: str, radii, pos=(0.0, 0.0, 0.0), quat=IDENTITY_QUAT, **kw) -> GeomSpec:
        return self.add(GeomSpec(self._name(part), "ellipsoid", _vec(radii), part, pos=_vec(pos),
                                 quat=_quat(quat), **kw))

    def mesh(self, part: str, verts, faces, collide: bool = False, **kw) -> GeomSpec:
        """A mesh geom (vertices in its body frame). Visual only by default; with `collide=True`
        both simulators use its convex hull."""
        name = self._name(part)
        self.meshes[name] = (np.asarray(verts, np.float32), np.asarray(faces, np.int32))
        return self.add(GeomSpec(name, "mesh", (), part, mesh=name, collide=collide, **kw))

    # -- result -------------------------------------------------------------------------------
    def finish(self, scale: float | None = None) -> ObjectAsset:
        """Sample every part's surface points on each of its bodies (from its colliding geoms
        there, or its visible ones if it has none), drop points buried inside other geoms of
        the same body, and return the asset."""
        vocab = list(self.spec["parts"])
        parts_used = {g.part for g in self.geoms}
        unknown = parts_used - set(vocab)
        if unknown:
            raise ValueError(f"{self.category}: geoms use parts {sorted(unknown)} outside the "
                             f"vocabulary {vocab}")
        seed = int(self.rng.integers(2**31))
        joints = {b.name: b.joint.name for b in self.bodies if b.joint is not None}
        body_order = [b.name for b in self.bodies]
        parts = {}
        for name in [v for v in vocab if v in parts_used]:
            geoms = [g for g in self.geoms if g.part == name]
            bodies = sorted({g.body for g in geoms}, key=body_order.index)
            pts_all, nrm_all, idx_all = [], [], []
            for k, body in enumerate(bodies):
                mine = [g for g in geoms if g.body == body]
                sources = [g for g in mine if g.collide] or [g for g in mine if g.visible]
                if not sources:
                    continue
                pts, nrm = sample_surface(sources, seed + len(parts) * 1000 + k * 100, self.meshes)
                keep = np.ones(len(pts), bool)
                for g in self.geoms:  # a geom's own surface is never deeper than the margin inside it
                    if g.body == body and g.collide:
                        keep &= ~inside_geom(g, pts, BURIED_MARGIN, self.meshes)
                if keep.sum() >= 16:
                    pts, nrm = pts[keep], nrm[keep]
                pts_all.append(pts)
                nrm_all.append(nrm)
                idx_all.append(np.full(len(pts), k, np.int8))
            parts[name] = Part(
                name, [g.name for g in geoms], bodies=tuple(bodies),
                joints=tuple(joints[b] for b in bodies if b in joints),
                points=np.concatenate(pts_all), normals=np.concatenate(nrm_all),
                point_body=np.concatenate(idx_all) if len(bodies) > 1 else None)
        asset = ObjectAsset(category=self.category, instance_id=self.instance_id, scale=0.0,
                            bodies=self.bodies, geoms=self.geoms, parts=parts, meshes=self.meshes,
                            params={**self.p, **self.extra})
        if scale is None:  # the largest extent at rest
            from sims.objects.kinematics import object_points

            allp = object_points(asset)[0]
            scale = float(np.max(allp.max(0) - allp.min(0)))
        asset.scale = float(scale)
        return asset


def _vec(v) -> tuple[float, ...]:
    return tuple(float(x) for x in v)


def _quat(q) -> tuple[float, float, float, float]:
    q = np.asarray(q, float)
    return tuple(float(x) for x in q / np.linalg.norm(q))
