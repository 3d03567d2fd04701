"""Procedural laptops: a base (flat slab, or a wedge thinner at the front) with a keyboard
(dark plate under visual key caps) and a touchpad on its top, and a lid hinged along the base's
top back edge holding the display (screen) inside its bezel and back shell (screen_frame).

The user side faces -x. The lid body sits on the hinge axis (along y); its joint's q = 0 is the
lid open at the instance's `open_angle` (100-110 deg from closed), negative q closes it down to
just above the keyboard and positive q opens it further. A frictionloss above the lid's worst
gravity torque holds it at any angle, as a laptop hinge does (the export's hard friction
impedance keeps MuJoCo's soft joint friction from letting it creep).
"""

from __future__ import annotations

import numpy as np
import trimesh

from sims.core.types import ObjectAsset
from sims.objects.builder import ObjectBuilder

BEZEL_LAYER = 0.0025  # thickness of the lid's front layer (bezel ring around the screen)
OVERLAP = 0.0015  # neighbouring geoms overlap by more than the builder's buried-point margin
PROTRUDE = 0.001  # keyboard plate and touchpad stand this far proud of the base top
KEY_HEIGHT = 0.0012
GRAVITY = 9.81
LID_DENSITY = 900.0  # kg/m^3; the base uses the default 1000


def _ry(angle: float) -> tuple[float, float, float, float]:
    return (float(np.cos(angle / 2)), 0.0, float(np.sin(angle / 2)), 0.0)


def _rot_y(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _key_caps(cols: int, rows: int, half_w: float, half_d: float, z0: float
              ) -> tuple[np.ndarray, np.ndarray]:
    """Key caps on a plate centred at the origin (x: depth, y: width), standing on z = z0; the
    front row (-x) has a space bar six keys wide."""
    px, py = 2 * half_d / rows, 2 * half_w / cols
    boxes = []

    def key(ix: float, iy0: int, span: int = 1):
        cx = -half_d + (ix + 0.5) * px
        cy = -half_w + (iy0 + span / 2) * py
        ext = (0.8 * px, span * py - 0.2 * py, KEY_HEIGHT)
        boxes.append(trimesh.creation.box(extents=ext, transform=trimesh.transformations.
                                          translation_matrix((cx, cy, z0 + KEY_HEIGHT / 2))))

    space0 = max(1, cols // 2 - 4)
    for iy in list(range(space0)) + list(range(space0 + 6, cols)):
        key(0, iy)
    key(0, space0, 6)
    for ix in range(1, rows):
        for iy in range(cols):
            key(ix, iy)
    mesh = trimesh.util.concatenate(boxes)
    return mesh.vertices, mesh.faces


def generate(instance_id: int) -> ObjectAsset:
    """Laptop `instance_id`, from the spec in assets/categories/laptop.yaml."""
    b = ObjectBuilder("laptop", instance_id)
    p = b.p
    shape = b.choice("base_shapes")
    layout = b.choice("keyboard_layouts")
    case = b.rgba()
    keys_rgba = b.rgba("key_colors")
    screen_rgba = b.rgba("screen_colors")
    width, depth = p["width"], p["depth"]
    h_back = p["base_height"]
    h_front = h_back * (p["wedge_front"] if shape == "wedge" else 1.0)
    slope = float(np.arctan2(h_back - h_front, depth))
    normal = np.array([-np.sin(slope), 0.0, np.cos(slope)])

    def top_z(x: float) -> float:
        return h_front + (x + depth / 2) / depth * (h_back - h_front)

    # -- base -----------------------------------------------------------------------------------
    if shape == "slab":
        b.box("base", (depth / 2, width / 2, h_back / 2), pos=(0, 0, h_back / 2), rgba=case)
    else:
        corners = [(x, y, z) for x, zt in ((-depth / 2, h_front), (depth / 2, h_back))
                   for y in (-width / 2, width / 2) for z in (0.0, zt)]
        hull = trimesh.convex.convex_hull(np.array(corners))
        b.mesh("base", hull.vertices, hull.faces, collide=True, rgba=case)

    def on_top(part: str, x: float, y: float, half_d: float, half_w: float, half_h: float, **kw):
        centre = np.array([x, y, top_z(x)]) + normal * (PROTRUDE - half_h)
        return b.box(part, (half_d, half_w, half_h), pos=centre, quat=_ry(-slope), **kw), centre

    cols = 14 + (4 if layout == "numpad" else 0)
    kb_w = min(p["keyboard_width"] + (0.04 if layout == "numpad" else 0.0), 0.92) * width
    kb_d = p["keyboard_depth"] * depth
    kb_x = depth / 2 - p["keyboard_back"] - kb_d / 2
    plate_half_h = 0.0015
    _, plate_centre = on_top("keyboard", kb_x, 0.0, kb_d / 2, kb_w / 2, plate_half_h,
                             rgba=tuple(0.6 * c for c in keys_rgba[:3]) + (1.0,))
    verts, faces = _key_caps(cols, 6, kb_w / 2, kb_d / 2, plate_half_h)
    b.mesh("keyboard", verts @ _rot_y(-slope).T + plate_centre, faces, rgba=keys_rgba)

    strip = kb_x - kb_d / 2 + depth / 2  # free band between the keyboard and the front edge
    tp_d = p["touchpad_depth"] * (strip - 0.008)
    tp_w = min(p["touchpad_width"], 0.45 * width)
    tp_y = 2 * kb_w / cols if layout == "numpad" else 0.0  # centred under the main key block
    tp_x = -depth / 2 + strip / 2 - 0.002
    on_top("touchpad", tp_x, tp_y, tp_d / 2, tp_w / 2, 0.0012,
           rgba=tuple(0.9 * c for c in case[:3]) + (1.0,))

    # -- lid: modelled closed (lying towards -x from the hinge, screen side down), then opened
    # by the body rotation, so q = 0 is the open pose and the joint axis stays +y.
    t = p["lid_thickness"]
    lid_len = depth / np.cos(slope) - 0.003
    lid_w = width - 0.002
    theta = p["open_angle"]
    # Hold the lid anywhere in its range: friction above the gravity torque of a level lid
    # (its mass from the solid slab, plus a margin for the overlapping bezel pieces).
    lid_mass = LID_DENSITY * lid_len * lid_w * t * 1.1
    friction = 1.5 * lid_mass * GRAVITY * lid_len / 2
    b.body("lid", pos=(depth / 2, 0.0, h_back), quat=_ry(theta), hinge_axis=(0, 1, 0),
           range=(-(theta + slope) + 0.03, p["open_more"]), damping=0.05, frictionloss=friction)
    kw = dict(body="lid", rgba=case, density=LID_DENSITY)
    s = BEZEL_LAYER
    b.box("screen_frame", (lid_len / 2, lid_w / 2, (t - s) / 2), pos=(-lid_len / 2, 0, (s + t) / 2),
          **kw)
    bt, bb, bs = p["bezel_top"], p["bezel_bottom"], p["bezel_side"]
    bz = (s + OVERLAP) / 2
    b.box("screen_frame", (bt / 2, lid_w / 2, bz), pos=(-lid_len + bt / 2, 0, bz), **kw)
    b.box("screen_frame", (bb / 2, lid_w / 2, bz), pos=(-bb / 2, 0, bz), **kw)
    side_len = lid_len - bt - bb
    for sign in (-1, 1):
        b.box("screen_frame", (side_len / 2, bs / 2, bz),
              pos=(-lid_len + bt + side_len / 2, sign * (lid_w / 2 - bs / 2), bz), **kw)
    recess = 0.0003  # glass sits just behind the bezel face
    sx0, sx1 = -lid_len + bt - OVERLAP, -bb + OVERLAP
    sz0, sz1 = recess, s + OVERLAP
    b.box("screen", ((sx1 - sx0) / 2, lid_w / 2 - bs + OVERLAP, (sz1 - sz0) / 2),
          pos=((sx0 + sx1) / 2, 0, (sz0 + sz1) / 2), body="lid", rgba=screen_rgba, density=LID_DENSITY)
    b.cylinder("screen_frame", 0.0015, 0.0002, pos=(-lid_len + bt / 2, 0, -0.0001), body="lid",
               rgba=(0.05, 0.05, 0.06, 1.0), collide=False)  # webcam
    b.cylinder("screen_frame", min(0.014, 0.08 * lid_len), 0.0002, pos=(-lid_len / 2, 0, t + 0.0001),
               body="lid", rgba=tuple(min(1.0, c * 1.15 + 0.08) for c in case[:3]) + (1.0,),
               collide=False)  # logo on the back

    b.extra.update(wedge=float(shape == "wedge"), numpad=float(layout == "numpad"),
                   lid_frictionloss=float(friction))
    return b.finish()
