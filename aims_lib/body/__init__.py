"""The SMPL-format infant body: procedural by default, SMIL when a file is given.

One definition of the body for the synthetic generator and for SMPLify: ``load_body_model``
returns a smplx SMPL module, ``coco17_keypoints`` turns its output into the project's keypoints,
``vertex_parts`` labels vertices by body part. The joint layout (:mod:`~aims_lib.body.skeleton`),
rotation conversions (:mod:`~aims_lib.body.rotations`) and the batched forward pass
(:mod:`~aims_lib.body.kinematics`) are shared by the pose sampler, SMPLify and HIPC.
"""

from aims_lib.body.keypoints import COCO17_JOINT_IDS, COCO17_VERTEX_IDS, coco17_keypoints
from aims_lib.body.model import (
    DEFAULT_BETAS,
    BodyModel,
    BodyPose,
    body_forward,
    body_measurements,
    load_body_model,
    procedural_arrays,
    vertex_parts,
)
from aims_lib.body.procedural import LANDMARK_IDS, NUM_VERTICES, SHAPE_COMPONENTS, Proportions
from aims_lib.body.skeleton import JOINT_NAMES, NUM_JOINTS, PARENTS
from aims_lib.body.smpl_file import REQUIRED_KEYS, BodyModelFileError, read_smpl_pickle, write_smpl_pickle

__all__ = [
    "COCO17_JOINT_IDS",
    "COCO17_VERTEX_IDS",
    "DEFAULT_BETAS",
    "JOINT_NAMES",
    "LANDMARK_IDS",
    "NUM_JOINTS",
    "NUM_VERTICES",
    "PARENTS",
    "REQUIRED_KEYS",
    "SHAPE_COMPONENTS",
    "BodyModel",
    "BodyModelFileError",
    "BodyPose",
    "Proportions",
    "body_forward",
    "body_measurements",
    "coco17_keypoints",
    "load_body_model",
    "procedural_arrays",
    "read_smpl_pickle",
    "vertex_parts",
    "write_smpl_pickle",
]
