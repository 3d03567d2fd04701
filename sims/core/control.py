"""The control contract every suite and policy shares: the action size and the control rate."""

from __future__ import annotations

ACTION_DIM = 10  # TCP target: position 3 + rot6d 6 + gripper 1
CONTROL_HZ = 20.0  # control steps per second
CONTROL_PERIOD = 1.0 / CONTROL_HZ  # s per control step
