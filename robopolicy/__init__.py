"""robopolicy: learn part-level manipulation policies in simulation.

Submodules are imported lazily by the CLI; importing this package is cheap (no torch, no mujoco).
"""

__version__ = "0.1.0"
