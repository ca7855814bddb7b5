# HRNet-W32 top-down heatmap estimator at the paper's scale (mmengine config, mmpose 1.x).
#
# The settings of mmpose's td-hm_hrnet-w32_8xb64-210e_coco-256x192 (its model zoo config): input
# 192x256 (w x h), heatmaps 48x64, Gaussian sigma 2, 17 COCO keypoints, MSE loss with target
# weights, Adam lr 5e-4 with a 500-iteration linear warm-up, x0.1 at epochs 170 and 200 of 210.
# Differences, on purpose:
# * no ImageNet backbone weights from a URL (nothing is downloaded here): the model trains from
#   scratch unless aims_lib.pose_branch.keypoints2d is given a local checkpoint (an official COCO
#   HRNet-W32 or an infant HRNet), which it loads as `load_from`;
# * validation and a checkpoint every epoch (our real validation split is small; the checkpoint
#   is what an interrupted run resumes from), keeping the last one and the best by val PCK@0.05
#   (mmpose's PCKAccuracy, normalised by the box's longer side) rather than COCO AP: a weak model
#   (a short CPU run) has AP 0 at every epoch, and the tie would keep the first epoch; for a
#   strong model the two agree. Both are logged;
# * one GPU with batch 64 at lr 5e-4 (mmpose's reference used 8 x 64 at the same lr).
# Data paths, epochs, batch size and the work dir are placeholders that
# aims_lib.pose_branch.keypoints2d fills in per run (cfg options), so every profile uses this
# file unchanged; the milestones and warm-up are rescaled to the run's length there.
#
# Sources: docs/references.md#mmpose.
default_scope = 'mmpose'

# runtime
train_cfg = dict(by_epoch=True, max_epochs=210, val_interval=1)
val_cfg = dict()
test_cfg = dict()

optim_wrapper = dict(optimizer=dict(type='Adam', lr=5e-4))
param_scheduler = [
    dict(type='LinearLR', begin=0, end=500, start_factor=0.001, by_epoch=False),  # warm-up
    dict(type='MultiStepLR', begin=0, end=210, milestones=[170, 200], gamma=0.1, by_epoch=True),
]

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=1, save_best='PCK', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='PoseVisualizationHook', enable=False),
)
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='PoseLocalVisualizer', vis_backends=vis_backends)  # named per run by mmengine
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True, num_digits=6)
log_level = 'INFO'
load_from = None
resume = False
backend_args = dict(backend='local')

# codec: image crop <-> heatmaps
codec = dict(type='MSRAHeatmap', input_size=(192, 256), heatmap_size=(48, 64), sigma=2)

model = dict(
    type='TopdownPoseEstimator',
    data_preprocessor=dict(
        type='PoseDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    backbone=dict(
        type='HRNet',
        in_channels=3,
        extra=dict(
            stage1=dict(num_modules=1, num_branches=1, block='BOTTLENECK', num_blocks=(4, ), num_channels=(64, )),
            stage2=dict(num_modules=1, num_branches=2, block='BASIC', num_blocks=(4, 4), num_channels=(32, 64)),
            stage3=dict(
                num_modules=4, num_branches=3, block='BASIC', num_blocks=(4, 4, 4), num_channels=(32, 64, 128)),
            stage4=dict(
                num_modules=3,
                num_branches=4,
                block='BASIC',
                num_blocks=(4, 4, 4, 4),
                num_channels=(32, 64, 128, 256))),
    ),
    head=dict(
        type='HeatmapHead',
        in_channels=32,
        out_channels=17,
        deconv_out_channels=None,
        loss=dict(type='KeypointMSELoss', use_target_weight=True),
        decoder=codec),
    test_cfg=dict(flip_test=True, flip_mode='heatmap', shift_heatmap=True),
)

# data: COCO keypoint files written per split by keypoints2d (train = synthetic + real train,
# val = real val, test = real test), with the GT boxes of the single infant per image.
dataset_type = 'CocoDataset'
data_mode = 'topdown'
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='RandomHalfBody'),
    dict(type='RandomBBoxTransform'),
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
train_dataloader = dict(
    batch_size=64,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root='',
        data_mode=data_mode,
        ann_file='TO_BE_SET/train.json',
        data_prefix=dict(img=''),
        pipeline=train_pipeline,
    ))
val_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(
        type=dataset_type,
        data_root='',
        data_mode=data_mode,
        ann_file='TO_BE_SET/val.json',
        data_prefix=dict(img=''),
        test_mode=True,
        pipeline=val_pipeline,
    ))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='CocoMetric', ann_file='TO_BE_SET/val.json'),
    dict(type='PCKAccuracy', thr=0.05, norm_item='bbox'),
]
test_evaluator = val_evaluator
