"""Gaussian-splat demonstration augmentation: Gaussian scenes of simulated episodes (`scene`),
3DGS .ply files (`ply`), and their rendering (`render`: gsplat on CUDA, the torch
rasterizer on the CPU)."""
