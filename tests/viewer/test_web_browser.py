"""`view --web` in a real browser: headless Chromium (software WebGL) opens the page the command
prints and the agentview panel must show the robot and the object as the simulator renders them.
Skipped where no Chromium is installed (`make apt` installs chromium-headless-shell)."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from tests.viewer.browser import HeadlessPage, find_chromium
from tests.viewer.signals import sigint_as_from_a_terminal
from tests.viewer.test_view import _free_port

CHROMIUM = find_chromium()
WIDTH, HEIGHT = 1600, 1000
BARS = 36  # px: rerun's top bar and the collapsed time panel


def agentview_panel(shot: np.ndarray) -> np.ndarray:
    """The inside of the agentview panel in the default blueprint (robopolicy.viewer.rerun_log):
    left column 3/5 of the width, its bottom 2/5 the cameras, agentview on the left."""
    content = HEIGHT - 2 * BARS
    top = BARS + int(0.65 * content)
    return shot[top:HEIGHT - BARS - 10, int(0.05 * WIDTH):int(0.25 * WIDTH)]


def rendered_colours(store, episode: int) -> dict[str, np.ndarray]:
    """The median colour of the robot's and of the object's pixels in the simulator's agentview."""
    from robopolicy.viewer.replay import replay_steps
    from robopolicy.viewer.sources import load_episode

    _, env, _, _ = next(iter(replay_steps(load_episode(str(store), episode, None))))
    out = env.backend.render("agentview", segmentation=True)
    labels = np.asarray(env.backend.segmentation_labels)[out.segmentation]
    robot = labels == "robot"
    obj = np.char.find(labels.astype(str), "/") >= 0  # "<object>/<part>"
    colours = {"robot": np.median(out.rgb[robot], axis=0), "object": np.median(out.rgb[obj], axis=0)}
    env.close()
    return colours


def share_near(panel: np.ndarray, colour: np.ndarray, tol: int = 30) -> float:
    return float((np.abs(panel.astype(int) - colour).max(axis=-1) <= tol).mean())


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (make apt installs it)")
def test_agentview_panel_shows_the_robot_and_the_object(expert_store, tmp_path):
    colours = rendered_colours(expert_store, 1)
    web_port, grpc_port = _free_port(), _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "robopolicy.cli", "view", f"path={expert_store}", "episode=1",
         "--web", f"web_port={web_port}", f"grpc_port={grpc_port}",
         f"hydra.run.dir={tmp_path / 'run'}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=sigint_as_from_a_terminal)
    try:
        out, deadline = "", time.time() + 120
        while "Ctrl-C" not in out and proc.poll() is None and time.time() < deadline:
            out += proc.stdout.readline()
        assert proc.poll() is None, out
        url = next(w for w in out.split() if w.startswith("http://127.0.0.1:"))
        with HeadlessPage(CHROMIUM, WIDTH, HEIGHT) as page:
            page.goto(url)
            # the software renderer takes a while to load the viewer and draw: look until it does
            deadline, shares = time.time() + 150, {}
            while time.time() < deadline:
                time.sleep(5)
                shot = page.screenshot()
                panel = agentview_panel(shot)
                shares = {k: share_near(panel, c) for k, c in colours.items()}
                if panel.std() > 20 and shares["robot"] > 0.01 and shares["object"] > 0.002:
                    break
        from PIL import Image

        Image.fromarray(shot).save(tmp_path / "web.png")  # for a person to look at
        assert panel.std() > 20, f"flat agentview panel; see {tmp_path / 'web.png'}"
        assert shares["robot"] > 0.01 and shares["object"] > 0.002, (shares, colours)
    finally:
        proc.kill()
        proc.wait()
