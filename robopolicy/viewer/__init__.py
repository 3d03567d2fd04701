"""Looking at episodes (`robopolicy view`): `sources` finds an episode in a dataset store or an
eval run, `replay` replays it in the simulator, `rerun_log` logs the replay to rerun (meshes and
camera poses from the env's backend), `video` writes mp4s (`captions` burns text into frames),
`native` plays it in the simulator's own viewer."""
