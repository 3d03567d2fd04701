"""The standard 3DGS `.ply` file of a GaussianScene (binary little endian, one `vertex` element).

Properties, float32, stored before activation like the scene: ``x y z [nx ny nz] f_dc_0..2
f_rest_0..(3K-1) opacity scale_0..2 rot_0..3`` (rot w first; f_rest channel-major: all R
coefficients, then G, then B). A scene's segments add an int32 ``segment`` property and one
``comment segment <id> <name>`` header line each; other 3DGS tools ignore both. A file without
segments loads as one segment named after the file, so a user's scan of an object or a
background can stand in for generated Gaussians.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from robopolicy.augment.scene import GaussianScene
from robopolicy.errors import RobopolicyError

_TYPES = {"char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2",
          "int16": "i2", "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4",
          "uint": "u4", "uint32": "u4", "float": "f4", "float32": "f4", "double": "f8",
          "float64": "f8"}
_MAX_HEADER = 1 << 20


def save_ply(scene: GaussianScene, path: str | Path) -> Path:
    """Write `scene` to `path` (parents created); returns the path."""
    path = Path(path)
    n = len(scene)
    rest = scene.sh_rest
    n_rest = 0 if rest is None else rest.shape[1] * 3
    names = (["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2"]
             + [f"f_rest_{i}" for i in range(n_rest)]
             + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])
    fields = [(name, "<f4") for name in names] + [("segment", "<i4")]
    data = np.empty(n, dtype=fields)
    columns = [scene.means, scene.sh_dc]
    if rest is not None:
        columns.append(rest.transpose(1, 2).reshape(n, n_rest))  # channel-major
    columns += [scene.opacity_logits[:, None], scene.log_scales, scene.quats_wxyz]
    floats = torch.cat([c.detach().to("cpu", torch.float32) for c in columns], 1).numpy()
    for i, name in enumerate(names):
        data[name] = floats[:, i]
    data["segment"] = scene.segment_ids.detach().cpu().numpy().astype(np.int32)
    header = ["ply", "format binary_little_endian 1.0"]
    header += [f"comment segment {sid} {name}" for sid, name in sorted(scene.segments.items())]
    header.append(f"element vertex {n}")
    header += [f"property {'int' if t == '<i4' else 'float'} {name}" for name, t in fields]
    header.append("end_header")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(("\n".join(header) + "\n").encode("ascii"))
        f.write(data.tobytes())
    return path


def load_ply(path: str | Path, segment_name: str | None = None) -> GaussianScene:
    """Read a 3DGS `.ply` (ours or another tool's). Without a `segment` property every Gaussian
    goes to one segment, `segment_name` (default: the file's stem)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RobopolicyError(f"ply {path}: cannot read ({exc.strerror})") from exc
    end = raw.find(b"end_header", 0, _MAX_HEADER)
    if not raw.startswith(b"ply") or end < 0:
        raise RobopolicyError(f"ply {path}: not a .ply file (no 'ply' ... 'end_header' header)")
    newline = raw.find(b"\n", end)
    body_start = len(raw) if newline < 0 else newline + 1
    lines = raw[:end].decode("ascii", errors="replace").splitlines()
    vertex, offset, segments = _parse_header(lines, path)
    count, dtype = vertex
    need = body_start + offset + count * dtype.itemsize
    if len(raw) < need:
        raise RobopolicyError(f"ply {path}: truncated ({len(raw)} bytes, the header promises "
                              f"{need})")
    data = np.frombuffer(raw, dtype=dtype, count=count, offset=body_start + offset)
    return _scene(data, segments, segment_name or path.stem, path)


def _parse_header(lines: list[str], path: Path):
    """((vertex count, dtype), byte offset of the vertex element, {segment id: name})."""
    if len(lines) < 2 or lines[1].split()[:2] != ["format", "binary_little_endian"]:
        fmt = lines[1] if len(lines) > 1 else "none"
        raise RobopolicyError(f"ply {path}: format {fmt!r} (only binary_little_endian is read)")
    elements: list[list] = []
    segments: dict[int, str] = {}
    for line in lines[2:]:
        words = line.split()
        if not words:
            continue
        if words[0] == "comment" and len(words) >= 4 and words[1] == "segment":
            try:
                segments[int(words[2])] = " ".join(words[3:])
            except ValueError as exc:
                raise RobopolicyError(f"ply {path}: bad header line {line!r}") from exc
        elif words[0] == "element" and len(words) == 3 and words[2].isdigit():
            elements.append([words[1], int(words[2]), []])
        elif words[0] == "property" and elements:
            if words[1] == "list":
                elements[-1][2].append(None)  # variable size: fine only after the vertices
            elif len(words) == 3 and words[1] in _TYPES:
                elements[-1][2].append((words[2], "<" + _TYPES[words[1]]))
            else:
                raise RobopolicyError(f"ply {path}: bad header line {line!r}")
        elif words[0] not in ("comment", "obj_info"):
            raise RobopolicyError(f"ply {path}: bad header line {line!r}")
    offset = 0
    for name, count, props in elements:
        if None in props:
            if name == "vertex":
                raise RobopolicyError(f"ply {path}: list property in the vertex element")
            raise RobopolicyError(f"ply {path}: list element {name!r} before the vertices")
        dtype = np.dtype(props)
        if name == "vertex":
            return (count, dtype), offset, segments
        offset += count * dtype.itemsize
    raise RobopolicyError(f"ply {path}: no vertex element")


def _scene(data: np.ndarray, segments: dict[int, str], default_name: str,
           path: Path) -> GaussianScene:
    names = set(data.dtype.names)
    required = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1",
                "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    missing = [name for name in required if name not in names]
    if missing:
        raise RobopolicyError(f"ply {path}: not a 3DGS file (no property {missing[0]!r})")
    n_rest = sum(1 for name in names if name.startswith("f_rest_"))
    if n_rest % 3 or (n_rest // 3) not in (0, 3, 8, 15):
        raise RobopolicyError(f"ply {path}: {n_rest} f_rest properties (want 0, 9, 24 or 45)")

    def cols(keys: list[str]) -> torch.Tensor:
        return torch.from_numpy(np.stack([data[k].astype(np.float32) for k in keys], 1))

    n = len(data)
    rest = None
    if n_rest:
        rest = cols([f"f_rest_{i}" for i in range(n_rest)]).reshape(n, 3, n_rest // 3)
        rest = rest.transpose(1, 2).contiguous()
    if "segment" in names:
        seg = torch.from_numpy(data["segment"].astype(np.int64))
        unnamed = set(np.unique(data["segment"]).tolist()) - set(segments)
        segments = {**segments, **{sid: f"{default_name}/{sid}" for sid in unnamed}}
    else:
        seg = torch.zeros(n, dtype=torch.int64)
        segments = {0: default_name}
    return GaussianScene(
        means=cols(["x", "y", "z"]), quats_wxyz=cols(["rot_0", "rot_1", "rot_2", "rot_3"]),
        log_scales=cols(["scale_0", "scale_1", "scale_2"]), opacity_logits=cols(["opacity"])[:, 0],
        sh_dc=cols(["f_dc_0", "f_dc_1", "f_dc_2"]), segment_ids=seg, segments=segments,
        sh_rest=rest)
