"""Headless evaluation: parallel sim workers, one batched policy call per control step, reports."""
