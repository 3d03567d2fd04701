"""One hydra app per CLI verb. Each module's `main` is decorated with `hydra_app`."""
