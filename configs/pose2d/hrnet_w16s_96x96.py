# A small HRNet for the CPU profiles (quick, smoke): same family, loss, codec type and data
# files as the paper-scale hrnet_w32_256x192.py, sized to train in minutes on 2 cores.
#
# * HRNet-W16-small: branch widths 16/32/64/128 (W32: 32/.../256), one module per stage and two
#   blocks per branch (W32: 1/4/3 modules, 4 blocks), a 32-channel first stage (W32: 64):
#   1.3 M parameters instead of 28.5 M.
# * Input 96x96 with 24x24 heatmaps: square, because infants lie as often as they sit, so their
#   boxes range from tall to wide (aspect 0.35-2.8 in our data); 5x fewer pixels than 256x192.
# * Adam at 1e-3 with batch 16 and milder augmentation (flip, rotation up to 30 degrees, scale
#   0.8-1.2, no half-body crops): a run of a few minutes sees ~10 epochs, and from scratch the
#   heatmaps only start to sharpen after several hundred updates; the schedule (warm-up, x0.1
#   near the end) is rescaled to the run's epochs by keypoints2d like the paper config's.
# Measured speeds and accuracies: docs/decisions.md, "2D configs' speeds and accuracies".
#
# Sources: docs/references.md#mmpose.
_base_ = ['./hrnet_w32_256x192.py']

optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-3))

codec = dict(type='MSRAHeatmap', input_size=(96, 96), heatmap_size=(24, 24), sigma=2)

model = dict(
    backbone=dict(
        _delete_=True,
        type='HRNet',
        in_channels=3,
        extra=dict(
            stage1=dict(num_modules=1, num_branches=1, block='BOTTLENECK', num_blocks=(2, ), num_channels=(32, )),
            stage2=dict(num_modules=1, num_branches=2, block='BASIC', num_blocks=(2, 2), num_channels=(16, 32)),
            stage3=dict(
                num_modules=1, num_branches=3, block='BASIC', num_blocks=(2, 2, 2), num_channels=(16, 32, 64)),
            stage4=dict(
                num_modules=1,
                num_branches=4,
                block='BASIC',
                num_blocks=(2, 2, 2, 2),
                num_channels=(16, 32, 64, 128))),
    ),
    head=dict(in_channels=16, decoder=codec),
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
train_dataloader = dict(batch_size=16, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader
