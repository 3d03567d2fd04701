"""Export an ObjectAsset to MJCF (MuJoCo). One description, every backend.

Geom groups: 0 = visible and colliding, 1 = visual only, 3 = collision only (hidden from
cameras by MuJoCo's default group visibility).
"""

from __future__ import annotations

from xml.etree import ElementTree as ET

import numpy as np

from sims.core.types import BodySpec, GeomSpec, ObjectAsset

OBJECT_CONDIM = 4  # torsional friction keeps grasped objects from spinning about the grasp axis


def _fmt(values) -> str:
    return " ".join(f"{float(v):.6g}" for v in np.ravel(values))


def _geom_element(parent: ET.Element, g: GeomSpec) -> None:
    attrs = {"name": g.name, "type": g.type, "pos": _fmt(g.pos), "quat": _fmt(g.quat),
             "rgba": _fmt(g.rgba)}
    if g.type == "mesh":
        attrs["mesh"] = g.mesh
    else:
        attrs["size"] = _fmt(g.size)
    if g.collide:
        attrs.update(density=f"{g.density:g}", friction=f"{g.friction:g} 0.01 0.0001",
                     condim=str(OBJECT_CONDIM), group="0" if g.visible else "3")
    else:
        attrs.update(contype="0", conaffinity="0", mass="0", group="1")
    ET.SubElement(parent, "geom", attrs)


def _body_element(parent: ET.Element, body: BodySpec, asset: ObjectAsset, children) -> None:
    el = ET.SubElement(parent, "body", {"name": body.name, "pos": _fmt(body.pos),
                                        "quat": _fmt(body.quat)})
    if body.parent is None:
        ET.SubElement(el, "freejoint", {"name": "root"})
    elif body.joint is not None:
        j = body.joint
        ET.SubElement(el, "joint", {
            "name": j.name, "type": j.type, "axis": _fmt(j.axis), "pos": _fmt(j.pos),
            "range": _fmt(j.range), "limited": "true", "damping": f"{j.damping:g}",
            "frictionloss": f"{j.frictionloss:g}"})
    for g in asset.geoms:
        if g.body == body.name:
            _geom_element(el, g)
    for child in children.get(body.name, []):
        _body_element(el, child, asset, children)


def to_mjcf(asset: ObjectAsset) -> str:
    """A self-contained MJCF model of the object (meshes inline), its root body free-floating."""
    root = ET.Element("mujoco", {"model": asset.name})
    ET.SubElement(root, "compiler", {"angle": "radian"})
    if asset.meshes:
        assets = ET.SubElement(root, "asset")
        for name, (verts, faces) in asset.meshes.items():
            ET.SubElement(assets, "mesh", {"name": name, "vertex": _fmt(verts), "face": " ".join(
                str(int(i)) for i in np.ravel(faces))})
    world = ET.SubElement(root, "worldbody")
    children: dict[str, list[BodySpec]] = {}
    for b in asset.bodies:
        if b.parent is not None:
            children.setdefault(b.parent, []).append(b)
    roots = [b for b in asset.bodies if b.parent is None]
    if len(roots) != 1:
        raise ValueError(f"object {asset.name}: expected one root body, found {len(roots)}")
    _body_element(world, roots[0], asset, children)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode")
