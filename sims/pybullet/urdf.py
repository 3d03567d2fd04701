"""An object's exported URDF with one link per part, as PyBullet needs it.

PyBullet reports contacts and segmentation per link, while a body of our objects may hold
several parts (a mug's body and handle). So each part of a body after its first moves into a
child link `<body>__<part>` fixed at the body's origin, with the inertia of its own geoms: the
object's mass and centre of mass are unchanged. (Done here, on the exported text, so the
shared exporter, whose source fingerprints the object library's cache, stays as it is.)
"""

from __future__ import annotations

from xml.etree import ElementTree as ET

from sims.core.types import ObjectAsset
from sims.objects.export import (
    _inertial,  # the exporter's own mass model, reused per part
    to_urdf,
)


def urdf_link_per_part(asset: ObjectAsset) -> tuple[str, dict[str, bytes]]:
    """(URDF text, mesh files) of `asset` with every part of a body in a link of its own."""
    text, files = to_urdf(asset)
    root = ET.fromstring(text)
    geoms = {g.name: g for g in asset.geoms}
    for link in list(root.findall("link")):
        shapes = [e for e in link if e.tag in ("visual", "collision")]
        parts = list(dict.fromkeys(geoms[e.get("name")].part for e in shapes))
        if len(parts) < 2:
            continue
        contact = link.find("contact")
        for part in parts:
            own = [e for e in shapes if geoms[e.get("name")].part == part]
            if part == parts[0]:
                target = link
                target.remove(target.find("inertial"))
            else:
                target = ET.SubElement(root, "link", {"name": f"{link.get('name')}__{part}"})
                for e in own:
                    link.remove(e)
                    target.append(e)
                if contact is not None:
                    target.append(ET.fromstring(ET.tostring(contact)))
                joint = ET.SubElement(root, "joint", {"name": f"{target.get('name')}_fixed",
                                                      "type": "fixed"})
                ET.SubElement(joint, "parent", {"link": link.get("name")})
                ET.SubElement(joint, "child", {"link": target.get("name")})
            colliding = [geoms[e.get("name")] for e in own if e.tag == "collision"]
            _inertial(target, colliding, asset)
            target.insert(0, target[-1])  # the inertial first, as URDF writes it
    ET.indent(root)
    return ET.tostring(root, encoding="unicode"), files
