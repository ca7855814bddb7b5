"""The pose branch: 2D keypoints -> SMPLify -> normalised 3D keypoints.

Importing the package is light (no mmpose): import the submodules you need,
``aims_lib.pose_branch.smplify`` (batched SMPLify), ``.priors`` (pose, bending and shape
priors) and ``.metrics`` (MPJPE, PA-MPJPE, reprojection error).
"""
