# The CPU HRNet of hrnet_w16s_96x96.py, tuned for a training run of a few CPU minutes (the quick
# and smoke profiles): same network, codec, optimiser and schedule, plus
#
# * bfloat16 mixed precision on CPUs that compute it natively (aims_lib/pose_branch/cpu_amp.py;
#   float32 elsewhere and on a GPU): 2-2.7x the training images per second here, so a budget buys
#   twice the epochs;
# * augmentation reduced to the horizontal flip (no rotation, scale or shift): a few-minute run
#   from scratch underfits (PCK@0.05 on its own training images 0.09-0.15), and the geometric
#   augmentation only slowed that fitting down.
#
# Measured on the quick-size set (1200 synthetic + 750 real at 160 px, real test split): 8 epochs
# give PCK@0.05 0.091 / PCK@0.1 0.275 with hrnet_w16s_96x96.py's augmentation, 0.109 / 0.316
# flip only; this config, 12 epochs (the quick profile): 0.143 / 0.429, COCO AP 0.013. The
# other settings tried are listed in aims_lib/profiles.py.
#
# Sources: docs/references.md#mmpose.
_base_ = ['./hrnet_w16s_96x96.py']

custom_imports = dict(imports=['aims_lib.pose_branch.cpu_amp'], allow_failed_imports=False)
optim_wrapper = dict(type='CpuBf16OptimWrapper', optimizer=dict(type='Adam', lr=1e-3))
custom_hooks = [dict(type='CpuBf16Hook')]

codec = dict(type='MSRAHeatmap', input_size=(96, 96), heatmap_size=(24, 24), sigma=2)
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='PackPoseInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
