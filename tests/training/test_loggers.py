import json

from robopolicy.training.loggers import MetricsLogger, truncate_metrics


def test_truncate_keeps_rows_up_to_the_step_and_drops_a_cut_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    rows = [{"step": s, "loss": 1.0 / s} for s in (1, 2, 3, 4, 5)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 6, "lo')
    truncate_metrics(path, 3)
    assert [json.loads(line) for line in path.read_text().splitlines()] == rows[:3]
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.jsonl"]  # no temporary file left


def test_a_resumed_logger_appends_after_the_checkpoint_step(tmp_path):
    logger = MetricsLogger(tmp_path, tensorboard=False)
    for step in (1, 2, 3, 4):
        logger.log(step, {"loss": float(step)})
    logger.close()
    logger = MetricsLogger(tmp_path, tensorboard=False, resume_step=2)
    logger.log(3, {"loss": 30.0})
    logger.close()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows == [{"step": 1, "loss": 1.0}, {"step": 2, "loss": 2.0}, {"step": 3, "loss": 30.0}]
