"""Backend-neutral simulation types: object assets, scene specs, cameras, the Backend protocol."""

from sims.core.types import (
    BodySpec,
    CameraSpec,
    ContactForce,
    GeomSpec,
    JointSpec,
    ObjectAsset,
    Part,
    PlacedObject,
    SceneSpec,
    TableSpec,
)

__all__ = [
    "BodySpec",
    "CameraSpec",
    "ContactForce",
    "GeomSpec",
    "JointSpec",
    "ObjectAsset",
    "Part",
    "PlacedObject",
    "SceneSpec",
    "TableSpec",
]
