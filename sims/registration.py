"""The suites' gymnasium ids, registered when `sims` is imported.

Registration stores entry-point strings only: nothing of the simulator is imported until
`gymnasium.make` builds an env. gymnasium (1.x) has no plugin entry points, so a program that
imports nothing of ours names the module in the id: ``gymnasium.make("sims:robopolicy/PartManip-v0")``.
Both take ``env`` (EnvConfig fields), ``tasks`` (task source fields) and ``render_mode``: the
keys of a store's env config, so ``gymnasium.make(id, **store.env_config)`` rebuilds its env.
"""

from __future__ import annotations

PARTMANIP_ID = "robopolicy/PartManip-v0"  # the suite's catalog episodes (split via tasks=)
MUG_LIFT_ID = "robopolicy/MugLift-v0"  # the mug-lift task pool (the quickstart's)
ENTRY_POINTS = {
    PARTMANIP_ID: "sims.partmanip.factory:partmanip_env",
    MUG_LIFT_ID: "sims.partmanip.factory:mug_lift_env",
}


def register_envs() -> None:
    """Register the suites' ids with gymnasium (once per process)."""
    import gymnasium

    for env_id, entry_point in ENTRY_POINTS.items():
        if env_id not in gymnasium.registry:
            # the env ends its own episodes (at the task's horizon): no TimeLimit wrapper
            gymnasium.register(env_id, entry_point=entry_point)
