"""Contact sheet of the object library: one row per category, a few instances each, every
pixel coloured by the part MuJoCo's segmentation says it shows (shaded by the RGB render so
shapes stay readable), with a legend of the category's parts."""

from __future__ import annotations

from pathlib import Path

import numpy as np

PALETTE = np.array([  # one colour per position in a category's part vocabulary
    (230, 80, 60), (60, 130, 220), (250, 190, 40), (90, 190, 90), (170, 90, 200),
    (40, 200, 200), (240, 130, 190), (150, 110, 70),
], np.float32)
BACKGROUND = (245, 245, 245)
LABEL_WIDTH = 150


def _preview_model(asset):
    """The instance alone with a camera framing it."""
    import mujoco

    from sims.mujoco.scene import lookat_quat
    from sims.objects.export import to_mjcf
    from sims.objects.kinematics import object_points

    spec = mujoco.MjSpec.from_string(to_mjcf(asset))
    spec.visual.quality.offsamples = 0
    spec.visual.headlight.ambient = [0.45, 0.45, 0.45]
    spec.visual.headlight.diffuse = [0.55, 0.55, 0.55]
    spec.visual.map.znear = 0.005
    pts = object_points(asset)[0]
    centre = (pts.max(0) + pts.min(0)) / 2
    radius = float(np.linalg.norm(pts.max(0) - pts.min(0))) / 2
    # from the right (-y), a little behind and above: the +x side, where handles and spouts
    # usually are, stays in view and the tops of containers show
    direction = np.array([0.3, -0.8, 0.75])
    direction /= np.linalg.norm(direction)
    fovy = 40.0
    dist = 1.15 * radius / np.sin(np.radians(fovy / 2))
    cam = spec.worldbody.add_camera()
    cam.name = "preview"
    cam.pos = list(centre + dist * direction)
    cam.quat = list(lookat_quat(centre + dist * direction, centre))
    cam.fovy = fovy
    return spec.compile()


def render_parts(asset, size: int = 160) -> np.ndarray:
    """An (size, size, 3) uint8 image of the instance (joints at 0), coloured by part."""
    import mujoco

    import sims.mujoco  # noqa: F401  (picks a headless GL backend before rendering)
    from sims.mujoco.renderer import Renderer

    model = _preview_model(asset)
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    renderer = Renderer(model, size, size)
    try:
        rgb, _, seg = renderer.render(data, "preview", rgb=True, segmentation=True)
    finally:
        renderer.close()
    vocab = _vocabulary(asset.category)
    geom_part = asset.part_of_geom()
    part_index = np.full(model.ngeom + 1, -1)
    for g in range(model.ngeom):
        part = geom_part.get(mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, g))
        if part is not None:
            part_index[g] = vocab.index(part)
    idx = part_index[seg]  # seg == -1 indexes the trailing -1
    shade = 0.45 + 0.55 * rgb.astype(np.float32).mean(axis=2, keepdims=True) / 255.0
    out = np.empty_like(rgb)
    out[:] = BACKGROUND
    hit = idx >= 0
    out[hit] = np.clip(PALETTE[idx[hit] % len(PALETTE)] * shade[hit], 0, 255).astype(np.uint8)
    return out


def _vocabulary(category: str) -> list[str]:
    from sims.objects.geometry import load_category_spec

    return list(load_category_spec(category)["parts"])


def contact_sheet(path: Path, cats: list[str] | None = None, per_row: int = 6,
                  size: int = 160, progress: bool = True) -> Path:
    """Render `per_row` instances of each category (spread over its ids) into one PNG."""
    import imageio.v3 as iio
    from PIL import Image, ImageDraw
    from tqdm import tqdm

    from sims.objects import categories, make_instance
    from sims.objects.library import n_instances

    cats = list(cats or categories())
    sheet = Image.new("RGB", (LABEL_WIDTH + per_row * size, len(cats) * size), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    jobs = [(r, c, k) for r, c in enumerate(cats) for k in range(per_row)]
    for r, category, k in tqdm(jobs, desc="preview", unit="img", disable=not progress):
        n = n_instances(category)
        instance = round(k * (n - 1) / max(1, per_row - 1))
        img = render_parts(make_instance(category, instance), size)
        sheet.paste(Image.fromarray(img), (LABEL_WIDTH + k * size, r * size))
        draw.text((LABEL_WIDTH + k * size + 4, r * size + 4), f"#{instance}", fill=(90, 90, 90))
        if k == 0:
            draw.text((6, r * size + 6), category, fill=(0, 0, 0))
            for j, part in enumerate(_vocabulary(category)):
                colour = tuple(int(v) for v in PALETTE[j % len(PALETTE)])
                y = r * size + 26 + 15 * j
                draw.rectangle((8, y + 2, 18, y + 12), fill=colour)
                draw.text((24, y), part, fill=(40, 40, 40))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, np.asarray(sheet))
    return path
