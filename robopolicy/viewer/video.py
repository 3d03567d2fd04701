"""Write frames to mp4 (H.264 via imageio's bundled ffmpeg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sims.core.control import CONTROL_HZ


def write_mp4(frames: list[np.ndarray] | np.ndarray, path: str | Path,
              fps: int = int(CONTROL_HZ)) -> Path:
    """Encode (T, H, W, 3) uint8 frames; H and W are padded to even sizes for yuv420p."""
    import imageio.v2 as imageio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"expected (T, H, W, 3) frames, got shape {frames.shape}")
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    with imageio.get_writer(path, fps=fps, codec="libx264", macro_block_size=1,
                            ffmpeg_log_level="error", output_params=["-pix_fmt", "yuv420p"]) as w:
        for f in frames:
            w.append_data(f)
    return path
