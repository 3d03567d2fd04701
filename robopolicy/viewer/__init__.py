"""Looking at episodes: video export (and, later, the rerun viewer)."""
