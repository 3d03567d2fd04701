"""Gaussian-splat demonstration augmentation. `scene`: Gaussian scenes with a segment per
Gaussian, built from meshes and posed per segment; `ply`: standard 3DGS .ply files; `render`:
rendering (`rasterize`, the differentiable torch rasterizer for the CPU, or `gsplat_render` on
CUDA) with the camera, settings and outputs of `camera`; `from_sim`: the scene and cameras of a
live MuJoCo backend; `fit`: colours (opacities, scales) fitted to MuJoCo's renders, cached per
instance by `fit_cache`."""
