"""`robopolicy eval`: headless rollouts of a policy in parallel workers, with a report."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from robopolicy.commands.app import config_dir, hydra_app, output_dir


def check_args(args: list[str]) -> str | None:
    """The one-line error for a `perturb=<kind>` among `args` with no configs/perturb/<kind>.yaml
    (checked before hydra, whose own message spans several lines), or None."""
    known = sorted(p.stem for p in (config_dir() / "perturb").glob("*.yaml"))
    for arg in args:
        key, eq, name = arg.lstrip("+").partition("=")
        if key == "perturb" and eq and name not in (*known, "null"):
            return f"eval: perturb={name}: unknown kind (known: {', '.join(known)})"
    return None


@hydra_app("eval")
def main(cfg: DictConfig) -> None:
    from robopolicy.evaluation.config import EvalConfig
    from robopolicy.evaluation.rollout import evaluate

    out = output_dir()
    run = EvalConfig.from_hydra(OmegaConf.to_container(cfg, resolve=True), out)
    report = evaluate(run)
    for name, part in [("all", report), *report.get("by_split", {}).items()]:
        o = part["overall"]
        lo, hi = o["ci95"]
        print(f"{name:>6}: {o['successes']}/{o['episodes']} = {o['success_rate']:.1%} "
              f"(95% CI {lo:.1%}-{hi:.1%}), completion {o['completion']:.2f}")
    print(f"report: {out / 'report.md'}")
    videos = sorted(out.glob("**/videos/*.mp4"))
    if videos:
        print(f"video:  {videos[0]}")
