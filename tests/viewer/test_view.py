"""`robopolicy view` as a user runs it (real subprocesses): rerun recordings read back with
rerun's own reader, videos read back with imageio, one-line errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from tests.viewer.conftest import CHUNK_EVERY, HORIZON, OFFSET
from tests.viewer.signals import sigint_as_from_a_terminal


def view(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "robopolicy.cli", "view", *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


def headless_env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}


def recording(path) -> tuple[object, Counter]:
    """(schema, {entity: temporal rows}) of an .rrd file."""
    from rerun.chunk import RrdReader

    store = RrdReader(path).store()
    rows: Counter = Counter()
    for chunk in store.stream():
        if not chunk.is_static:
            rows[chunk.entity_path] += chunk.num_rows
    return store.schema(), rows


def strips_by_step(path, entity: str) -> dict[int, np.ndarray]:
    """{step: the first line strip (N, 3)} logged at `entity` of an .rrd file."""
    from rerun.chunk import RrdReader

    out = {}
    for chunk in RrdReader(path).store().stream():
        if chunk.entity_path == entity and not chunk.is_static:
            batch = chunk.to_record_batch()
            for step, strips in zip(batch.column("step").to_pylist(),
                                    batch.column("LineStrips3D:strips").to_pylist(), strict=True):
                out[step] = np.asarray(strips[0])
    return out


def has(schema, entity: str, archetype: str) -> bool:
    return bool(schema.column_names_for(entity_path=entity, archetype=archetype))


def check_episode_recording(schema, rows: Counter, steps: int) -> None:
    """What every viewed episode logs (see robopolicy/viewer/rerun_log.py)."""
    for cam in ("agentview", "wrist"):
        assert rows[f"/world/camera/{cam}/rgb"] == steps + 1  # every state, reset included
        assert has(schema, f"/world/camera/{cam}/rgb", "Image")
        assert has(schema, f"/world/camera/{cam}/part_mask", "SegmentationImage")
        assert has(schema, f"/world/camera/{cam}", "Pinhole")
    assert has(schema, "/world/pcd", "Points3D") and rows["/world/pcd"] == steps + 1
    paths = schema.entity_paths()
    link = "/world/robot/panda_link3/link3_8"
    assert link in paths and has(schema, link, "Mesh3D") and rows[link] == steps + 1
    parts = [p for p in paths if p.startswith("/world/object/handle/")]
    assert parts and all(has(schema, p, "Mesh3D") and has(schema, p, "Transform3D") for p in parts)
    assert has(schema, "/world/table", "Mesh3D")
    for entity in ("/action/tcp_pos", "/action/rot6d", "/action/gripper"):
        assert rows[entity] == steps
    for entity in ("/proprio/joints", "/proprio/tcp_pos", "/status/success", "/status/completion"):
        assert has(schema, entity, "Scalars") and rows[entity] == steps + 1, entity
    # state timeline lanes: logged when they change (a lane starts at step 0)
    for entity in ("/timeline/skill", "/timeline/success", "/timeline/predicates/grasping"):
        assert has(schema, entity, "StateChange") and 1 <= rows[entity] <= steps + 1, entity
    assert rows["/timeline/success"] == 2  # running, then success
    assert has(schema, "/skill/instruction", "TextLog") and has(schema, "/task", "TextDocument")
    assert has(schema, "/world/action/tcp_target", "Points3D")
    assert has(schema, "/world/action/tcp_path", "LineStrips3D")


@pytest.mark.slow
def test_save_writes_a_recording_of_a_dataset_episode(expert_store, tmp_path):
    from robopolicy.data.store import EpisodeStore

    out = tmp_path / "ep.rrd"
    r = view(f"path={expert_store}", "episode=1", "--save", str(out),
             f"hydra.run.dir={tmp_path / 'run'}")
    assert r.returncode == 0, r.stderr
    assert "replay success=True" in r.stdout
    schema, rows = recording(out)
    check_episode_recording(schema, rows, EpisodeStore.open(expert_store).episode_meta(1)["length"])
    from rerun.chunk import RrdReader

    assert RrdReader(out).blueprints()  # the default layout travels with the recording
    assert "/world/policy/pred_chunk" not in schema.entity_paths()  # an expert demo: no chunks
    check_pinholes_land_on_the_rendered_part(out, expert_store, 1)


def logged_camera(path, cam: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(resolution (2,), K (3, 3), position (3,), rotation (3, 3)) of a camera in an .rrd file,
    the pose as first logged (rerun stores 3x3 matrices column-major)."""
    from rerun.chunk import RrdReader

    entity, res = f"/world/camera/{cam}", None
    pose = None
    for chunk in RrdReader(path).store().stream():
        if chunk.entity_path != entity:
            continue
        batch = chunk.to_record_batch()
        names = batch.schema.names
        if "Pinhole:resolution" in names:
            res = np.asarray(batch.column("Pinhole:resolution").to_pylist()[0][0])
            k = np.asarray(batch.column("Pinhole:image_from_camera").to_pylist()[0][0]).reshape(3, 3).T
        if "Transform3D:translation" in names and pose is None:
            pose = (np.asarray(batch.column("Transform3D:translation").to_pylist()[0][0]),
                    np.asarray(batch.column("Transform3D:mat3x3").to_pylist()[0][0]).reshape(3, 3).T)
    assert res is not None and pose is not None, f"no pinhole and pose logged at {entity}"
    return res, k, *pose


def check_pinholes_land_on_the_rendered_part(rrd, store_path, episode: int) -> None:
    """The logged pinhole has the image's size, and the target part's points, projected with the
    logged intrinsics and camera pose (RUB: x right, y up, looking along -z), land within 1 px
    of the part's pixels in the simulator's own render."""
    from robopolicy.viewer.replay import replay_steps
    from robopolicy.viewer.sources import load_episode

    ep = load_episode(str(store_path), episode, None)
    _, env, obs, _ = next(iter(replay_steps(ep, ("skill_pcd", "part_mask.agentview", "depth.agentview"))))
    mask, depth = obs["part_mask.agentview"], obs["depth.agentview"]
    h, w = mask.shape
    for cam in ("agentview", "wrist"):
        res, _, _, _ = logged_camera(rrd, cam)
        np.testing.assert_array_equal(res, [w, h])
    _, k, pos, rot = logged_camera(rrd, "agentview")
    pcd = obs["skill_pcd"]
    x, y, z = ((pcd[:, :3] - pos) @ rot).T  # world -> camera (RUB)
    cols = np.floor(k[0, 0] * x / -z + k[0, 2]).astype(int)
    rows = np.floor(k[1, 1] * -y / -z + k[1, 2]).astype(int)
    assert ((cols >= 0) & (cols < w) & (rows >= 0) & (rows < h)).all()
    shifts = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)]
    # each object point lands within 1 px of a pixel the simulator rendered at its depth
    gap = np.min([np.abs(depth[np.clip(rows + dr, 0, h - 1), np.clip(cols + dc, 0, w - 1)] + z)
                  for dr, dc in shifts], axis=0)
    assert np.median(gap) < 0.002 and (gap < 0.01).mean() > 0.98
    # and the target part's points on the part's pixels
    target = pcd[:, 3] > 0.5
    assert target.any()
    on_part = np.max([mask[np.clip(rows + dr, 0, h - 1), np.clip(cols + dc, 0, w - 1)]
                      for dr, dc in shifts], axis=0)
    assert on_part[target].all()


@pytest.mark.slow
def test_save_writes_a_recording_of_an_eval_episode_with_its_chunks(eval_run, tmp_path):
    root, record = eval_run
    out = tmp_path / "ep.rrd"
    r = view(f"path={root}", "episode=3", f"--save={out}", f"hydra.run.dir={tmp_path / 'run'}")
    assert r.returncode == 0, r.stderr
    assert "replay success=True" in r.stdout
    schema, rows = recording(out)
    check_episode_recording(schema, rows, record["steps"])
    n_chunks = -(-record["steps"] // CHUNK_EVERY)  # one line strip per predicted chunk
    assert has(schema, "/world/policy/pred_chunk", "LineStrips3D")
    assert rows["/world/policy/pred_chunk"] == rows["/world/policy/executed_chunk"] == n_chunks
    # the predicted future (entries OFFSET.. of each chunk) lies 1 cm above the executed targets
    pred = strips_by_step(out, "/world/policy/pred_chunk")
    executed = strips_by_step(out, "/world/policy/executed_chunk")
    assert sorted(pred) == list(range(0, record["steps"], CHUNK_EVERY))
    assert len(pred[0]) == len(executed[0]) == HORIZON - OFFSET
    np.testing.assert_allclose(pred[CHUNK_EVERY] - executed[CHUNK_EVERY], [[0, 0, 0.01]] *
                               (HORIZON - OFFSET), atol=1e-6)


@pytest.mark.slow
def test_video_of_an_eval_episode_is_captioned_like_eval_videos(eval_run, tmp_path):
    import imageio.v3 as iio

    from robopolicy.viewer.captions import BAR

    root, record = eval_run
    out = tmp_path / "ep.mp4"
    r = view(f"path={root / 'test1'}", "episode=3", "--video", str(out), "size=[64,48]",
             f"hydra.run.dir={tmp_path / 'run'}")
    assert r.returncode == 0, r.stderr
    frames = iio.imread(out)
    # one frame per state: agentview | wrist, the instruction above and the skill below
    assert frames.shape == (record["steps"] + 1, 48 + 2 * BAR, 2 * 64, 3)
    top, bottom = frames[:, :BAR].astype(int), frames[:, -BAR:].astype(int)
    assert top.max() > 200 and np.median(top) < 60  # light text on a dark bar
    assert np.abs(top - top[0]).mean() < 5  # the instruction stays (up to video compression)
    assert np.abs(bottom[-1] - bottom[0]).mean() > 5  # the skill caption changes
    views = frames[:, BAR:-BAR]
    assert views[:, :, :64].std() > 10 and views[:, :, 64:].std() > 10  # both cameras show a scene
    assert not (tmp_path / "ep.rrd").exists()


def one_line_error(r) -> str:
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


def test_bad_path_and_missing_episode_are_one_line_errors(expert_store, tmp_path):
    run = f"hydra.run.dir={tmp_path / 'run'}"
    line = one_line_error(view(f"path={tmp_path / 'nope'}", "--save", "x.rrd", run))
    assert str(tmp_path / "nope") in line and "no such file" in line
    (tmp_path / "stuff").mkdir()
    line = one_line_error(view(f"path={tmp_path / 'stuff'}", "--save", "x.rrd", run))
    assert "neither a dataset store" in line
    line = one_line_error(view(f"path={expert_store}", "episode=4", "--save", "x.rrd", run))
    assert line == f"error: dataset {expert_store}: no episode 4 (it has 4)"


def test_eval_episode_out_of_range_is_a_one_line_error(tmp_path):
    from tests.viewer.test_sources import _run

    _run(tmp_path, episode=3)
    line = one_line_error(view(f"path={tmp_path / 'run'}", "episode=4", "--save", "x.rrd",
                               f"hydra.run.dir={tmp_path / 'hr'}"))
    assert "eval run" in line and "test1: no episode 4 (1 finished: episodes 3..3)" in line


def test_without_a_display_native_and_the_viewer_say_what_to_do(tmp_path):
    from tests.viewer.test_sources import _run

    _run(tmp_path, episode=0)  # a valid run: the display is checked before replaying it
    run, path = f"hydra.run.dir={tmp_path / 'hr'}", f"path={tmp_path / 'run'}"
    line = one_line_error(view(path, "episode=0", "--native", run, env=headless_env()))
    assert "--native: no display" in line
    line = one_line_error(view(path, "episode=0", run, env=headless_env()))
    assert "no display" in line and all(f in line for f in ("--save", "--video", "--web"))


def test_view_help_shows_the_flags():
    r = view("--help")
    assert r.returncode == 0, r.stderr
    assert all(key in r.stdout for key in ("save: null", "web: false", "native: false", "split:"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _non_loopback_address() -> str | None:
    """This machine's address on its outward interface, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # a documentation address: nothing is sent
        except OSError:
            return None
        address = s.getsockname()[0]
    return None if address.startswith("127.") else address


@pytest.mark.slow
def test_web_serves_the_viewer_until_interrupted(eval_run, tmp_path):
    import signal
    import time
    import urllib.request

    web_port, grpc_port = _free_port(), _free_port()
    cmd = [sys.executable, "-m", "robopolicy.cli", "view", f"path={eval_run[0]}", "episode=3",
           "--web", f"web_port={web_port}", f"grpc_port={grpc_port}",
           f"hydra.run.dir={tmp_path / 'hr'}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=sigint_as_from_a_terminal)
    try:
        out, deadline = "", time.time() + 120
        while "Ctrl-C" not in out and proc.poll() is None and time.time() < deadline:
            out += proc.stdout.readline()
        assert proc.poll() is None, out  # logged the episode, still serving
        url = next(w for w in out.split() if w.startswith("http://127.0.0.1:"))
        assert url.startswith(f"http://127.0.0.1:{web_port}/?url=rerun%2Bhttp"), out
        with urllib.request.urlopen(url, timeout=10) as page:  # closed before the SIGINT
            assert page.status == 200
        outside = _non_loopback_address()
        if outside is not None:  # bound to 127.0.0.1 only: another interface is refused
            for port in (web_port, grpc_port):
                with pytest.raises(OSError):
                    socket.create_connection((outside, port), timeout=2).close()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        for port in (web_port, grpc_port):  # the rerun server stopped with it
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_web_on_a_taken_port_is_a_one_line_error(expert_store, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = view(f"path={expert_store}", "--web", f"grpc_port={port}",
                 f"web_port={_free_port()}", f"hydra.run.dir={tmp_path / 'run'}")
    assert f"127.0.0.1:{port}" in one_line_error(r) and "grpc_port=" in r.stderr


def entries(path, entity: str, column: str) -> list[tuple[int, object]]:
    """[(step, value)] of a component column logged at `entity` of an .rrd file."""
    from rerun.chunk import RrdReader

    out = []
    for chunk in RrdReader(path).store().stream():
        if chunk.entity_path == entity and not chunk.is_static:
            batch = chunk.to_record_batch()
            out += [(step, value[0]) for step, value in zip(batch.column("step").to_pylist(),
                                                            batch.column(column).to_pylist(),
                                                            strict=True)]
    return sorted(out, key=lambda e: e[0])


def test_a_bilevel_episode_shows_the_planners_skills_and_replies(eval_run, tmp_path):
    """The record's skills on the `timeline/planner` lane from the step each started; the split's
    planner log entries of this episode (not another's) as TextLogs at the step they were asked."""
    import json

    from tests.viewer.conftest import write_eval_run

    root, record = eval_run
    folder = root / record["split"]
    actions = np.load(folder / record["rollout"])["action"][:8]
    skills = [{"skill": "grasp", "params": {"part": "handle"}},
              {"skill": "move", "params": {"direction": "top", "distance": 0.12}}]
    run = tmp_path / "run"
    write_eval_run(run, json.loads((root / "run.json").read_text())["env"], record["task"],
                   actions, with_chunks=False, skills=skills, skill_starts=[0, 5])
    log = [{"episode": "test1/3", "step": 0, "mode": "plan", "attempt": 0, "outcome": "ok",
            "answer": '[{"skill": "grasp", "part": "handle"}]'},
           {"episode": "test1/4", "step": 2, "mode": "plan", "attempt": 0, "outcome": "ok",
            "answer": "another episode's"},
           {"episode": "test1/3", "step": 5, "mode": "next", "attempt": 0,
            "outcome": "invalid: no such part", "answer": "grasp the lid"},
           {"episode": "test1/3", "step": 5, "mode": "next", "attempt": 1, "outcome": "ok",
            "answer": '{"skill": "move", "direction": "top"}'}]
    (run / "test1" / "planner_log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in log))
    out = tmp_path / "ep.rrd"
    r = view(f"path={run}", "episode=3", f"--save={out}", f"hydra.run.dir={tmp_path / 'hydra'}")
    assert r.returncode == 0, r.stderr
    lane = entries(out, "/timeline/planner", "StateChange:state")
    assert lane == [(0, "skill 1: grasp(part=handle)"),
                    (5, "skill 2: move(direction=top, distance=0.12)")]
    replies = entries(out, "/planner/reply", "TextLog:text")
    assert [step for step, _ in replies] == [0, 5, 5]
    assert replies[0][1].endswith(log[0]["answer"]) and "plan" in replies[0][1]
    assert "invalid: no such part" in replies[1][1] and replies[2][1].endswith(log[3]["answer"])
    assert not any("another episode" in text for _, text in replies)


def test_the_skill_caption_says_task_done_once_the_chain_is_achieved():
    """After the last skill the tracker's index is past the chain: no 'skill N+1' row."""
    from robopolicy.viewer.captions import skill_caption

    running = {"skill_index": 1, "skill_instruction": "Move it left.", "success": False}
    assert skill_caption(running) == "skill 2: Move it left."
    assert skill_caption({**running, "skill_index": 2, "success": True}) == "task done"


@pytest.mark.slow
def test_a_pybullet_episode_replays_in_pybullet(eval_run, tmp_path):
    # an eval run whose env is PyBullet: the recording holds PyBullet's meshes, moved every step,
    # and its rendered images; the video shows PyBullet's renders
    import json

    import imageio.v3 as iio

    from tests.viewer.conftest import write_eval_run

    root, record = eval_run
    env = {**json.loads((root / "run.json").read_text())["env"], "backend": "pybullet"}
    steps = 12
    actions = np.load(root / "test1" / record["rollout"])["action"][:steps]
    run = tmp_path / "pb_run"
    write_eval_run(run, env, record["task"], actions, with_chunks=False)
    out = tmp_path / "ep.rrd"
    r = view(f"path={run}", "episode=3", f"--save={out}", f"hydra.run.dir={tmp_path / 'run'}")
    assert r.returncode == 0, r.stderr
    schema, rows = recording(out)
    paths = schema.entity_paths()
    links = [p for p in paths if p.startswith("/world/robot/panda_link3/")]
    assert links and all(has(schema, p, "Mesh3D") and rows[p] == steps + 1 for p in links)
    assert "/world/robot/panda_link0/link0_0" in paths  # the fixed base: one static pose
    handle = [p for p in paths if p.startswith("/world/object/handle/")]
    assert handle and all(rows[p] == steps + 1 for p in handle)
    assert has(schema, "/world/table", "Mesh3D")
    assert rows["/world/camera/agentview/rgb"] == steps + 1
    video = tmp_path / "ep.mp4"
    r = view(f"path={run}", "episode=3", "--video", str(video), "size=[64,48]",
             f"hydra.run.dir={tmp_path / 'run2'}")
    assert r.returncode == 0, r.stderr
    frames = iio.imread(video)
    assert len(frames) == steps + 1 and frames.std() > 10
