"""Export an ObjectAsset to MJCF (MuJoCo) and URDF (PyBullet). One description, every backend.

MJCF geom groups: 0 = visible and colliding, 1 = visual only, 3 = collision only (hidden from
cameras by MuJoCo's default group visibility). In URDF the same split is `<visual>` vs
`<collision>` elements. The bodies of one object never collide with each other (joint
limits keep lids and screens in place), in both simulators.
"""

from __future__ import annotations

from xml.etree import ElementTree as ET

import numpy as np

from sims.core.types import BodySpec, GeomSpec, ObjectAsset

OBJECT_CONDIM = 4  # torsional friction keeps grasped objects from spinning about the grasp axis
OBJECT_TORSIONAL_FRICTION = 0.01  # m
# MuJoCo's joint friction is a soft constraint: with the default impedance a lid that gravity
# pulls on creeps (a laptop screen opens ~0.17 rad in 2 s). A hard impedance plus a little
# armature holds such joints (~0.001 rad in 2 s) while the robot can still move them.
JOINT_SOLIMP_FRICTION = "0.99 0.999 0.001 0.5 2"
JOINT_ARMATURE = 0.01


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
        attrs.update(density=f"{g.density:g}",
                     friction=f"{g.friction:g} {OBJECT_TORSIONAL_FRICTION:g} 0.0001",
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
            "frictionloss": f"{j.frictionloss:g}", "armature": f"{JOINT_ARMATURE:g}",
            "solimpfriction": JOINT_SOLIMP_FRICTION})
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
    names = [b.name for b in asset.bodies]
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    if pairs:
        contact = ET.SubElement(root, "contact")
        for a, b in pairs:
            ET.SubElement(contact, "exclude", {"body1": a, "body2": b})
    ET.indent(root)
    return ET.tostring(root, encoding="unicode")


# -- URDF ---------------------------------------------------------------------------------------

def _rpy(quat) -> str:
    """URDF roll-pitch-yaw (fixed-axis XYZ) of a wxyz quaternion."""
    import warnings

    from scipy.spatial.transform import Rotation

    w, x, y, z = quat
    with warnings.catch_warnings():  # at gimbal lock any of the equivalent angle sets is fine
        warnings.simplefilter("ignore", UserWarning)
        return _fmt(Rotation.from_quat([x, y, z, w]).as_euler("xyz"))


def _urdf_shape(parent: ET.Element, g: GeomSpec, mesh_files: dict[str, str]) -> None:
    geometry = ET.SubElement(parent, "geometry")
    s = g.size
    if g.type == "box":
        ET.SubElement(geometry, "box", {"size": _fmt(2 * np.asarray(s))})
    elif g.type == "sphere":
        ET.SubElement(geometry, "sphere", {"radius": f"{s[0]:.6g}"})
    elif g.type == "cylinder":
        ET.SubElement(geometry, "cylinder", {"radius": f"{s[0]:.6g}", "length": f"{2 * s[1]:.6g}"})
    elif g.type == "capsule":  # a PyBullet URDF extension; length excludes the caps, as in MuJoCo
        ET.SubElement(geometry, "capsule", {"radius": f"{s[0]:.6g}", "length": f"{2 * s[1]:.6g}"})
    else:  # mesh, and ellipsoid (no URDF primitive): a mesh file
        ET.SubElement(geometry, "mesh", {"filename": mesh_files[g.name]})


def _geom_mesh_for_urdf(g: GeomSpec, asset: ObjectAsset):
    """A geom's mesh in its own frame (URDF places it with the element's origin)."""
    from sims.objects.geometry import geom_mesh

    return geom_mesh(GeomSpec(g.name, g.type, g.size, g.part, mesh=g.mesh), asset.meshes)


def _inertial(parent: ET.Element, geoms: list[GeomSpec], asset: ObjectAsset) -> None:
    """Mass, centre of mass and inertia of a link from its colliding geoms (as MuJoCo computes
    them: each geom solid at its density, summed)."""
    from sims.objects.geometry import geom_mesh

    masses, coms, inertias = [], [], []
    for g in geoms:
        m = geom_mesh(g, asset.meshes)
        if g.type == "mesh":
            m = m.convex_hull
        m.density = g.density
        masses.append(m.mass)
        coms.append(m.center_mass)
        inertias.append(m.moment_inertia)
    if not masses:
        masses, coms, inertias = [1e-4], [np.zeros(3)], [np.eye(3) * 1e-8]
    total = float(sum(masses))
    com = sum(mi * ci for mi, ci in zip(masses, coms, strict=True)) / total
    inertia = np.zeros((3, 3))
    for mi, ci, ii in zip(masses, coms, inertias, strict=True):
        d = ci - com
        inertia += ii + mi * (d @ d * np.eye(3) - np.outer(d, d))
    el = ET.SubElement(parent, "inertial")
    ET.SubElement(el, "origin", {"xyz": _fmt(com), "rpy": "0 0 0"})
    ET.SubElement(el, "mass", {"value": f"{total:.6g}"})
    ET.SubElement(el, "inertia", {
        "ixx": f"{inertia[0, 0]:.6g}", "ixy": f"{inertia[0, 1]:.6g}", "ixz": f"{inertia[0, 2]:.6g}",
        "iyy": f"{inertia[1, 1]:.6g}", "iyz": f"{inertia[1, 2]:.6g}", "izz": f"{inertia[2, 2]:.6g}"})


def to_urdf(asset: ObjectAsset, mesh_dir: str = "meshes") -> tuple[str, dict[str, bytes]]:
    """A URDF model of the object (root link `base`, free-floating when loaded without a fixed
    base) and the OBJ files its mesh geoms refer to, as {relative path: bytes}."""
    root = ET.Element("robot", {"name": asset.name})
    files: dict[str, bytes] = {}
    mesh_files: dict[str, str] = {}
    for g in asset.geoms:
        if g.type in ("mesh", "ellipsoid"):
            rel = f"{mesh_dir}/{g.name}.obj"
            mesh_files[g.name] = rel
            files[rel] = _geom_mesh_for_urdf(g, asset).export(file_type="obj").encode()
    for body in asset.bodies:
        link = ET.SubElement(root, "link", {"name": body.name})
        geoms = [g for g in asset.geoms if g.body == body.name]
        _inertial(link, [g for g in geoms if g.collide], asset)
        for g in geoms:
            origin = {"xyz": _fmt(g.pos), "rpy": _rpy(g.quat)}
            if g.visible:
                vis = ET.SubElement(link, "visual", {"name": g.name})
                ET.SubElement(vis, "origin", origin)
                _urdf_shape(vis, g, mesh_files)
                mat = ET.SubElement(vis, "material", {"name": f"{g.name}_mat"})
                ET.SubElement(mat, "color", {"rgba": _fmt(g.rgba)})
            if g.collide:
                col = ET.SubElement(link, "collision", {"name": g.name})
                ET.SubElement(col, "origin", origin)
                _urdf_shape(col, g, mesh_files)
        colliding = [g for g in geoms if g.collide]
        if colliding:  # PyBullet reads per-link friction from here
            contact = ET.SubElement(link, "contact")
            ET.SubElement(contact, "lateral_friction", {"value": f"{colliding[0].friction:g}"})
    for body in asset.bodies:
        if body.parent is None:
            continue
        j = body.joint
        kind = "fixed" if j is None else {"hinge": "revolute", "slide": "prismatic"}[j.type]
        joint = ET.SubElement(root, "joint", {"name": j.name if j else f"{body.name}_fixed",
                                              "type": kind})
        ET.SubElement(joint, "parent", {"link": body.parent})
        ET.SubElement(joint, "child", {"link": body.name})
        ET.SubElement(joint, "origin", {"xyz": _fmt(body.pos), "rpy": _rpy(body.quat)})
        if j is not None:
            ET.SubElement(joint, "axis", {"xyz": _fmt(j.axis)})
            ET.SubElement(joint, "limit", {"lower": f"{j.range[0]:.6g}", "upper": f"{j.range[1]:.6g}",
                                           "effort": "100", "velocity": "10"})
            ET.SubElement(joint, "dynamics", {"damping": f"{j.damping:g}",
                                              "friction": f"{j.frictionloss:g}"})
    ET.indent(root)
    return ET.tostring(root, encoding="unicode"), files
