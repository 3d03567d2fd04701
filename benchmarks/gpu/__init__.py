"""The sections of `benchmarks/gpu_check.py`: each measures one part of the GPU path with the
project's own trainer, policies, evaluation and renderers and returns a JSON-able dict."""
