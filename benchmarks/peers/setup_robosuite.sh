#!/usr/bin/env bash
# Peer set-up for the simulator-throughput benchmark: builds .venv-robosuite (repo root) with
# robosuite 1.5.2 on MuJoCo 3.3.7, enough to import it and run its `Lift` task headless
# (EGL or OSMesa). robosuite 1.5.2 does not run on MuJoCo 4, hence its own venv.
#
# Minimal install: robosuite's declared deps include pynput (keyboard teleop; pulls evdev,
# built from source), pytest, tqdm, mink + qpsolvers[quadprog] (GR1 whole-body IK) and
# opencv-python. None of the first group is needed for Lift with a Panda and the default
# controller, so robosuite is installed with --no-deps and only its runtime imports are added,
# pinned. cv2 is imported unconditionally (robosuite.environments.base -> OpenCV viewer), so
# opencv-python-headless stands in for opencv-python (no X11/libGL deps). `pip check` will list
# the skipped deps as missing; robosuite logs a harmless warning about mink and robosuite_models
# at import. The venv is ~1.2 GB: robosuite itself is 530 MB (meshes/textures), llvmlite
# 170 MB, opencv 150 MB, scipy 110 MB.
#
# Idempotent: a stamp file holding the pin list makes a second run a no-op; changing the pins
# below rebuilds. Usage: bash benchmarks/peers/setup_robosuite.sh   (VENV=... to override)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${VENV:-$ROOT/.venv-robosuite}"
PYTHON="${PYTHON:-python3}"

ROBOSUITE_PIN="robosuite==1.5.2"
# Runtime imports of robosuite (numpy, numba, scipy, PIL, termcolor) plus MuJoCo 3.3.7 and its
# own deps (resolved normally). numba pins numpy's range; these are a known-good set.
DEPS_PINS="mujoco==3.3.7 numpy==2.4.6 numba==0.68.1 llvmlite==0.50.0 scipy==1.17.1 pillow==13.0.0 termcolor==3.3.0 opencv-python-headless==5.0.0.93"

STAMP="$VENV/.robosuite-setup-stamp"
# Bump SETUP_REV when the steps below change, so existing venvs are brought up to date.
SETUP_REV=2
WANT="rev$SETUP_REV $ROBOSUITE_PIN $DEPS_PINS"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" && -x "$VENV/bin/python" ]]; then
  echo "setup_robosuite: $VENV is ready (stamp matches)"
  exit 0
fi

start=$(date +%s)
if [[ ! -x "$VENV/bin/python" ]]; then
  echo "setup_robosuite: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)
"${PIP[@]}" install -q $DEPS_PINS
"${PIP[@]}" install -q --no-deps "$ROBOSUITE_PIN"

# robosuite logs three "No private macro file found!" warnings at every import unless
# robosuite/macros_private.py exists. Its own scripts/setup_macros.py copies macros.py there
# (interactively); an empty override file does the same job and keeps every default
# (numba on, GPU/EGL rendering, opengl image convention), so the peer runs as shipped.
SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
if [[ ! -f "$SITE/robosuite/macros_private.py" ]]; then
  printf '%s\n' "# Written by robopolicy's benchmarks/peers/setup_robosuite.sh: no overrides," \
    "# robosuite's defaults in macros.py apply. Present only to silence its warning." \
    > "$SITE/robosuite/macros_private.py"
fi

# Smoke check: robosuite and MuJoCo import with the pinned versions. It also builds Lift
# (no rendering, so no GL needed) and steps it once: that JIT-compiles robosuite's numba
# kernels (~10-15 s on 2 cores) into numba's on-disk cache (robosuite/utils/__pycache__), so
# the benchmark's first run does not pay for it (nor do K workers compile it at once).
MUJOCO_GL=egl "$VENV/bin/python" - <<'PYEOF'
import time
t = time.perf_counter()
import mujoco, numpy as np, robosuite
assert robosuite.__version__ == "1.5.2", robosuite.__version__
assert mujoco.__version__ == "3.3.7", mujoco.__version__
env = robosuite.make("Lift", robots="Panda", has_renderer=False, has_offscreen_renderer=False,
                     use_camera_obs=False, control_freq=20)
env.reset()
env.step(np.zeros(env.action_dim))
env.close()
print(f"setup_robosuite: smoke test (import, Lift, numba cache) {time.perf_counter() - t:.1f}s")
PYEOF

echo "$WANT" > "$STAMP"
echo "setup_robosuite: $VENV is ready ($(( $(date +%s) - start )) s)"
