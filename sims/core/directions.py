"""Named directions in the robot base frame (PartInstruct's convention): left = +y,
right = -y, top = +z, bottom = -z, front = -x (towards the robot), back = +x (away from it)."""

from __future__ import annotations

import numpy as np

DIRECTIONS: dict[str, np.ndarray] = {
    "front": np.array([-1.0, 0.0, 0.0]),
    "back": np.array([1.0, 0.0, 0.0]),
    "left": np.array([0.0, 1.0, 0.0]),
    "right": np.array([0.0, -1.0, 0.0]),
    "top": np.array([0.0, 0.0, 1.0]),
    "bottom": np.array([0.0, 0.0, -1.0]),
}
