"""3DGS .ply import/export: bit-exact round trip, other tools' files, one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robopolicy.augment.ply import load_ply, save_ply
from robopolicy.augment.scene import GaussianScene
from robopolicy.errors import RobopolicyError


def _scene(n: int = 50, rest: bool = True) -> GaussianScene:
    g = torch.Generator().manual_seed(3)
    return GaussianScene(
        means=torch.randn(n, 3, generator=g), quats_wxyz=torch.randn(n, 4, generator=g),
        log_scales=torch.randn(n, 3, generator=g) - 4, opacity_logits=torch.randn(n, generator=g),
        sh_dc=torch.randn(n, 3, generator=g), segment_ids=torch.arange(n) % 3,
        segments={0: "robot/link3", 1: "mug/handle", 2: "table", 7: "unused part"},
        sh_rest=torch.randn(n, 15, 3, generator=g) if rest else None)


def test_round_trip_is_bit_exact(tmp_path):
    scene = _scene()
    back = load_ply(save_ply(scene, tmp_path / "sub" / "scene.ply"))
    for name in ("means", "quats_wxyz", "log_scales", "opacity_logits", "sh_dc", "sh_rest",
                 "segment_ids"):
        a, b = getattr(scene, name), getattr(back, name)
        assert a.dtype == b.dtype and torch.equal(a, b), name
    assert back.segments == scene.segments


def test_f_rest_is_channel_major(tmp_path):
    scene = _scene(n=2)
    path = save_ply(scene, tmp_path / "s.ply")
    raw = path.read_bytes()
    body = raw[raw.index(b"end_header\n") + len(b"end_header\n"):]
    header = raw[: raw.index(b"end_header")].decode().splitlines()
    props = [line.split()[2] for line in header if line.startswith("property")]
    dtype = np.dtype([(p, "<i4" if p == "segment" else "<f4") for p in props])
    data = np.frombuffer(body, dtype=dtype)
    # f_rest_15 is the first coefficient of the green channel
    assert data["f_rest_15"][1] == scene.sh_rest[1, 0, 1].item()
    assert data["f_rest_1"][1] == scene.sh_rest[1, 1, 0].item()


def test_reads_another_tools_file_without_segments(tmp_path):
    # normals present, degree-0 only, no segment property, an extra element after the vertices
    n = 4
    names = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
             "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    data = np.zeros(n, dtype=[(k, "<f4") for k in names])
    data["x"] = np.arange(n)
    data["rot_0"] = 1.0
    header = "ply\nformat binary_little_endian 1.0\nelement vertex 4\n"
    header += "".join(f"property float {k}\n" for k in names)
    header += "element face 0\nproperty list uchar int vertex_indices\nend_header\n"
    path = tmp_path / "scan.ply"
    path.write_bytes(header.encode() + data.tobytes())
    scene = load_ply(path)
    assert len(scene) == 4 and scene.sh_rest is None
    assert scene.segments == {0: "scan"} and torch.equal(scene.means[:, 0], torch.arange(4.0))


@pytest.mark.parametrize("damage", ["truncate", "garbage", "ascii"])
def test_a_damaged_ply_is_a_one_line_error(tmp_path, damage):
    path = save_ply(_scene(), tmp_path / "bad.ply")
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) - 100])
    elif damage == "garbage":
        path.write_bytes(b"\x00\x01 not a ply at all")
    else:
        path.write_bytes(raw.replace(b"binary_little_endian", b"ascii", 1))
    with pytest.raises(RobopolicyError) as info:
        load_ply(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
