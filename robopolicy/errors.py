"""User-facing errors: raised for bad input (files, configs, checkpoints) and printed as one line."""


class RobopolicyError(Exception):
    """An error caused by the user's input; the CLI prints its message as one line and exits 2.

    Messages name the file, key or value at fault, e.g.
    ``dataset outputs/x.zarr: missing meta/episode_ends (not an EpisodeStore?)``.
    """
