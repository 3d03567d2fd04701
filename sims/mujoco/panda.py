"""The Franka Panda for MuJoCo, built from the URDF and meshes inside the `pybullet` package.

Nothing is copied into the repository: the URDF is read from `pybullet_data` at run time, its
`package://` mesh paths are made absolute, and MuJoCo's URDF importer builds the model. We then
add what a URDF cannot say: position actuators with gravity compensation, a coupled two-finger
gripper, a TCP site and sane inertias (the URDF's are placeholders).
"""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np

ARM_JOINTS = [f"panda_joint{i}" for i in range(1, 8)]
FINGER_JOINTS = ["panda_finger_joint1", "panda_finger_joint2"]
# A "ready" pose: TCP about 0.3 m in front of the base, 0.5 m up, pointing down.
HOME_QPOS = np.array([0.0, -np.pi / 4, 0.0, -3 * np.pi / 4, 0.0, np.pi / 2, np.pi / 4])
TCP_OFFSET = 0.1034  # metres from the hand frame to the point between the fingertip pads
FINGER_MAX = 0.04  # metres of travel per finger (8 cm total opening)
# Joint position gains (N m/rad), damping gains and torque limits, per joint (Franka's limits).
KP = np.array([4500, 4500, 3500, 3500, 2000, 2000, 2000], float)
KV = np.array([450, 450, 350, 350, 200, 200, 200], float)
TORQUE = np.array([87, 87, 87, 87, 12, 12, 12], float)
GRIPPER_KP = 2000.0  # N/m on the finger opening
GRIPPER_FORCE = 20.0  # N, maximum squeeze per finger: the URDF's effort limit
GRIPPER_SQUEEZE = 0.01  # m: "closed" commands the opening this far below zero (a deeper squeeze
# makes grasps on thin parts slip more)
FINGER_FRICTION = 1.5
# The pads' contact time constant (s; MuJoCo's solref), stiffer than MuJoCo's 0.02 s: at 0.02 s
# squeezed pads sink 4.6-6.3 mm into a pump head 18 mm across and a round one, pinched so deep,
# squeezes out sideways between them like soap as it is lifted; at 0.01 s they sink 1.7-2.5 mm.
# Stiffer still fails a push of the regression tests. PAD_SOLMIX makes the pads' value, not the
# object's, set the pair's contact.
PAD_SOLREF = (0.01, 1.0)
PAD_SOLMIX = 1000.0


def panda_urdf_path() -> Path:
    """Path of the Panda URDF inside the installed `pybullet_data` package."""
    try:
        import pybullet_data
    except ImportError as e:  # pragma: no cover - pybullet is a dependency
        raise ImportError("the Panda model comes from the `pybullet` package: pip install pybullet") from e
    return Path(pybullet_data.getDataPath()) / "franka_panda" / "panda.urdf"


def _urdf_text() -> str:
    """The URDF with absolute mesh paths, telling MuJoCo to keep visual meshes and every link."""
    path = panda_urdf_path()
    text = path.read_text().replace("package://", f"{path.parent}/")
    head, sep, rest = text.partition("<robot")
    tag_end = rest.index(">") + 1
    return (head + sep + rest[:tag_end]
            + '<mujoco><compiler discardvisual="false" fusestatic="false"/></mujoco>'
            + rest[tag_end:])


def _position_actuator(spec: mujoco.MjSpec, name: str, target: str, kp: float, kv: float,
                       force: float, ctrlrange, trntype=mujoco.mjtTrn.mjTRN_JOINT) -> None:
    act = spec.add_actuator()
    act.name = name
    act.target = target
    act.trntype = trntype
    act.gaintype = mujoco.mjtGain.mjGAIN_FIXED
    act.biastype = mujoco.mjtBias.mjBIAS_AFFINE
    act.gainprm[0] = kp
    act.biasprm[:3] = [0.0, -kp, -kv]
    act.forcelimited = 1
    act.forcerange = [-force, force]
    act.ctrllimited = 1
    act.ctrlrange = list(ctrlrange)


def panda_spec() -> mujoco.MjSpec:
    """An MjSpec of the Panda with actuators `panda_act1..7`, `gripper`, and site `tcp`."""
    spec = mujoco.MjSpec.from_string(_urdf_text())
    spec.modelname = "panda"

    for body in spec.bodies:
        if body.name == "world":
            continue
        body.gravcomp = 1.0
        body.fullinertia = [np.nan] * 6
        if body.name in ("panda_leftfinger", "panda_rightfinger"):
            body.inertia = [1e-5, 1e-5, 1e-5]
        elif body.mass > 0:
            body.inertia = [0.01 * body.mass] * 3

    for geom in spec.geoms:
        is_finger = geom.parent.name in ("panda_leftfinger", "panda_rightfinger")
        if geom.group == 0:  # collision geometry: hide it, keep it colliding
            geom.group = 3
            if is_finger:
                geom.name = f"{geom.parent.name}_pad"
                geom.friction = [FINGER_FRICTION, 0.02, 0.0001]
                geom.condim = 4
                geom.solref = list(PAD_SOLREF)
                geom.solmix = PAD_SOLMIX
        else:
            geom.rgba = [0.25, 0.25, 0.27, 1.0] if is_finger or geom.parent.name == "panda_hand" \
                else [0.95, 0.95, 0.95, 1.0]

    for name, kp, kv, tau in zip(ARM_JOINTS, KP, KV, TORQUE, strict=True):
        j = spec.joint(name)
        j.armature = 0.1
        j.damping = [1.0, 0.0, 0.0]
        _position_actuator(spec, name.replace("joint", "act"), name, kp, kv, tau, j.range)
    for name in FINGER_JOINTS:
        spec.joint(name).armature = 0.01
        spec.joint(name).damping = [2.0, 0.0, 0.0]
        # the squeeze limit is GRIPPER_FORCE, whatever effort limit the URDF states
        spec.joint(name).actfrcrange = [-GRIPPER_FORCE, GRIPPER_FORCE]

    # Coupled fingers: a tendon averages them, an equality keeps them symmetric.
    tendon = spec.add_tendon()
    tendon.name = "gripper_opening"
    for name in FINGER_JOINTS:
        tendon.wrap_joint(name, 0.5)
    eq = spec.add_equality()
    eq.type = mujoco.mjtEq.mjEQ_JOINT
    eq.name1, eq.name2 = FINGER_JOINTS
    eq.data[:5] = [0, 1, 0, 0, 0]
    # Commanding below the joint limit (-GRIPPER_SQUEEZE) keeps squeezing a grasped part
    # however thin it is (at up to GRIPPER_FORCE per finger).
    _position_actuator(spec, "gripper", "gripper_opening", GRIPPER_KP, 100.0, 2 * GRIPPER_FORCE,
                       (-GRIPPER_SQUEEZE, FINGER_MAX), trntype=mujoco.mjtTrn.mjTRN_TENDON)

    hand = spec.body("panda_hand")
    site = hand.add_site()
    site.name = "tcp"
    site.pos = [0.0, 0.0, TCP_OFFSET]
    site.size = [0.005, 0.005, 0.005]
    site.group = 4
    # The hand body and link7 are joined through a massless link8, so MuJoCo does not treat
    # them as neighbours; exclude their (always touching) collision pair explicitly.
    for a, b in (("panda_link7", "panda_hand"), ("panda_link6", "panda_hand"),
                 ("panda_link7", "panda_leftfinger"), ("panda_link7", "panda_rightfinger")):
        ex = spec.add_exclude()
        ex.bodyname1, ex.bodyname2 = a, b
    return spec
