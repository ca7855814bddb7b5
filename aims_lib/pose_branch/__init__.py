"""The pose branch (paper Sec. 4.2): 2D keypoints -> SMPLify -> normalised 3D keypoints.

Importing the package is light (no mmpose): import the submodules you need,
``aims_lib.pose_branch.estimator`` (the 2D-estimator interface and registry, the predictions
file), ``.metrics_2d`` (2D AP/PCK of any estimator), ``.mmpose_estimator`` (the ``mmpose``
estimator: top-down heatmap models), ``.keypoints2d`` (training them: a run directory),
``.coco_files`` (the data sets as COCO files), ``.run_checkpoints`` (a run's best and last
checkpoints), ``.mmpose_backbone`` (the image branch's ImageNet backbones inside mmpose), ``.mmcv_shim``
(the one place of the mmcv-lite workaround), ``.cpu_amp`` (bfloat16 training on CPUs),
``.smplify`` (batched SMPLify), ``.lifting`` (a dataset's 2D keypoints to 3D), ``.priors`` (pose,
bending and shape priors) and ``.metrics`` (MPJPE, PA-MPJPE, reprojection error).
"""
