"""One planner per skill, on a shared base."""
