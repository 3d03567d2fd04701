"""Procedural desk staplers lying on their base plate, front towards +x: base (the bottom plate,
with an anvil under the magazine's front end), body (the arm: a housing at the rear and the
staple magazine running forward above a paper slot) and lid (the top cover over the magazine).

The body is hinged to the base at the housing's bottom rear edge and the lid to the body at the
housing's top front edge, both about y, q = 0 closed, positive q swinging the front up; gravity
keeps both on their lower limit at rest. Each hinge sits on an edge of its body, so all of a
body's geometry lies on one side of it (the lid's frame is turned 90 deg about y for that): the
opening lid swings away from the housing instead of through it.
"""

from __future__ import annotations

from sims.core.types import ObjectAsset
from sims.objects.builder import ObjectBuilder

OVERLAP = 0.0015  # neighbouring geoms overlap by more than the builder's buried-point margin
SQRT_HALF = 0.5 ** 0.5
METAL = (0.72, 0.73, 0.75, 1.0)


def generate(instance_id: int) -> ObjectAsset:
    """Stapler `instance_id`, from the spec in assets/categories/stapler.yaml."""
    b = ObjectBuilder("stapler", instance_id)
    p = b.p
    nose, rear, base_front = b.choice("nose_shapes"), b.choice("rear_shapes"), b.choice("base_shapes")
    rgba = b.rgba()
    lid_c, base_c = b.choice("lid_colors"), b.choice("base_colors")
    lid_rgba = rgba if lid_c == "same" else (*map(float, lid_c), 1.0)
    base_rgba = rgba if base_c == "same" else (*map(float, base_c), 1.0)

    length, bw, tb = p["length"], p["base_width"], p["base_thickness"]
    aw = min(p["arm_width"], bw - 0.002)
    gap, mh, hl, hlen = p["paper_gap"], p["magazine_height"], p["lid_height"], p["housing_length"]
    height = gap + mh + hl  # housing height above the base plate

    # -- base plate ---------------------------------------------------------------------------
    kw = dict(rgba=base_rgba, density=4000.0)
    if base_front == "round":
        flat = length - bw / 2
        b.box("base", (flat / 2, bw / 2, tb / 2), pos=(-length / 2 + flat / 2, 0, tb / 2), **kw)
        b.cylinder("base", bw / 2, tb / 2, pos=(length / 2 - bw / 2, 0, tb / 2), **kw)
    else:
        b.box("base", (length / 2, bw / 2, tb / 2), pos=(0, 0, tb / 2), **kw)
    x_rear = -length / 2 + 0.002
    rounding = 0.3 * bw / 2 if base_front == "round" else 0.0  # keep the arm over the plate's curve
    x_front = length / 2 + p["front_overhang"] - rounding
    b.box("base", (0.010, 0.3 * aw, 0.001), pos=(x_front - 0.014, 0, tb), rgba=METAL,
          density=7800.0)  # anvil, under the magazine's front end

    # -- body: the arm, its frame on the hinge at the housing's bottom rear edge ------------------
    b.body("arm", pos=(x_rear, 0, tb), hinge_axis=(0, -1, 0), range=(0.0, p["arm_open"]),
           damping=0.02, frictionloss=0.02)
    kw = dict(body="arm", rgba=rgba, density=1200.0)
    if rear == "round":
        rr = 0.35 * height
        b.box("body", ((hlen - rr) / 2, aw / 2, height / 2), pos=((hlen + rr) / 2, 0, height / 2), **kw)
        b.box("body", (rr / 2 + OVERLAP, aw / 2, (height - rr) / 2),
                 pos=(rr / 2 + OVERLAP, 0, (height - rr) / 2), **kw)
        b.cylinder("body", rr, aw / 2, pos=(rr, 0, height - rr), axis=(0, 1, 0), **kw)
    else:
        b.box("body", (hlen / 2, aw / 2, height / 2), pos=(hlen / 2, 0, height / 2), **kw)
    arm_len = x_front - x_rear
    mag_len = arm_len - hlen + OVERLAP
    b.box("body", (mag_len / 2, aw / 2 - 0.0015, mh / 2), pos=(arm_len - mag_len / 2, 0, gap + mh / 2),
          body="arm", rgba=METAL, density=2500.0)

    # -- lid: hinged at its rear top edge, laid out upright (x forward, z down from the hinge)
    # and stored in a frame turned +90 deg about y (local x = -z, local z = x).
    b.body("lid", parent="arm", pos=(hlen + 0.0005, 0, height), quat=(SQRT_HALF, 0.0, SQRT_HALF, 0.0),
           hinge_axis=(0, -1, 0), range=(0.0, p["lid_open"]), damping=0.01, frictionloss=0.01)
    lid_len = arm_len - hlen - 0.0005
    kw = dict(body="lid", rgba=lid_rgba, density=900.0)
    flat = lid_len - (hl / 2 if nose == "round" else 0.0)
    b.box("lid", (hl / 2, aw / 2, flat / 2), pos=(hl / 2, 0, flat / 2), **kw)
    if nose == "round":
        b.cylinder("lid", hl / 2, aw / 2, pos=(hl / 2, 0, flat), axis=(0, 1, 0), **kw)
    b.extra.update(round_nose=float(nose == "round"), round_rear=float(rear == "round"),
                   round_base=float(base_front == "round"), height=float(tb + height))
    return b.finish()
