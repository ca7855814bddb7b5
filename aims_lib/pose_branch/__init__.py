"""The pose branch (paper Sec. 4.2): 2D keypoints -> SMPLify -> normalised 3D keypoints.

Importing the package is light (no mmpose): import the submodules you need,
``aims_lib.pose_branch.keypoints2d`` (HRNet through mmpose: training, estimator, AP/PCK),
``.mmcv_shim`` (the one place of the mmcv-lite workaround), ``.smplify`` (batched SMPLify),
``.priors`` (pose, bending and shape priors) and ``.metrics`` (MPJPE, PA-MPJPE, reprojection
error).
"""
