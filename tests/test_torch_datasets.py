import pytest
import torch
from torch.utils.data import DataLoader

from aims_lib.data import DatasetError, load_dataset
from aims_lib.data.torch_datasets import IMAGENET_NORMALIZATION as NORM
from aims_lib.data.torch_datasets import TF_LITE_NORMALIZATION, ImageDataset, KeypointDataset, image_transform


def test_image_dataset_items(aims_tiny):
    ds = ImageDataset(aims_tiny, split="train", image_size=32, normalization=NORM)
    item = ds[0]
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["image"].shape == (4, 3, 32, 32)
    assert batch["coarse"].dtype == torch.int64
    full = load_dataset(aims_tiny)
    s = full.select(split="train")[0]
    assert (item["coarse"], item["fine"], item["domain"]) == (s.coarse_id, s.fine_id, s.domain == "real")


def test_image_dataset_filters(aims_tiny):
    real_test = ImageDataset(aims_tiny, split="test", domain="real", image_size=16, normalization=NORM)
    assert len(real_test) > 0 and all(s.domain == "real" and s.split == "test" for s in real_test.samples)
    with pytest.raises(ValueError, match="unknown split"):
        ImageDataset(aims_tiny, split="dev", normalization=NORM)


def test_eval_transform_is_deterministic_train_is_not(aims_tiny):
    ev = ImageDataset(aims_tiny, image_size=24, normalization=NORM)
    assert torch.equal(ev[0]["image"], ev[0]["image"])
    tr = ImageDataset(aims_tiny, image_size=24, train=True, normalization=NORM)
    torch.manual_seed(0)
    a = tr[0]["image"]
    torch.manual_seed(1)
    assert not torch.equal(a, tr[0]["image"])
    with pytest.raises(ValueError, match="image_size"):
        image_transform(0, train=False, normalization=NORM)


def test_normalization_follows_the_backbone(aims_tiny):
    """The same pixels under ImageNet statistics and under TF-Lite's (x - 127) / 128."""
    from PIL import Image

    img = Image.new("RGB", (4, 4), (255, 127, 0))
    lite = image_transform(4, train=False, normalization=TF_LITE_NORMALIZATION)(img)
    assert torch.allclose(lite[:, 0, 0], torch.tensor([128 / 128, 0.0, -127 / 128]), atol=1e-5)
    imnet = image_transform(4, train=False, normalization=NORM)(img)
    assert torch.allclose(imnet[:, 0, 0], torch.tensor([(1 - 0.485) / 0.229, (127 / 255 - 0.456) / 0.224, -0.406 / 0.225]), atol=1e-5)


def test_unreadable_image_is_named(aims_tiny, tmp_path):
    import shutil

    root = tmp_path / "ds"
    shutil.copytree(aims_tiny.parent, root)
    (root / "images" / "000001.png").write_bytes(b"not a png")
    ds = ImageDataset(root, image_size=16, normalization=NORM)
    with pytest.raises(DatasetError, match="000001.png.*unreadable"):
        ds[0]


def test_keypoint_dataset(aims_tiny):
    ds = KeypointDataset(aims_tiny)
    item = ds[0]
    assert item["keypoints_2d"].shape == (17, 2)
    assert item["keypoints_3d"].shape == (17, 3) and item["has_3d"]
    assert item["visibility"].dtype == torch.int64


def test_keypoint_dataset_requires_3d(aims_tiny, tmp_path):
    import json

    raw = json.loads(aims_tiny.read_text())
    del raw["annotations"][0]["keypoints_3d"]
    p = tmp_path / "annotations.json"
    p.write_text(json.dumps(raw))
    with pytest.raises(DatasetError, match="keypoints_3d.*missing"):
        KeypointDataset(load_dataset(p, check_images=False))
    ds = KeypointDataset(load_dataset(p, check_images=False), require_3d=False)
    assert not ds[0]["has_3d"] and torch.isnan(ds[0]["keypoints_3d"]).all()


def test_crop_to_box_is_square_and_centred():
    import numpy as np
    from PIL import Image

    from aims_lib.data.torch_datasets import crop_to_box

    im = Image.fromarray(np.arange(100 * 80 * 3, dtype=np.uint8).reshape(100, 80, 3) % 255)
    out = crop_to_box(im, np.array([10.0, 20.0, 20.0, 40.0]), margin=0.25)  # side 40 * 1.5 = 60
    assert out.size == (60, 60)
    # the crop spans x -10..50, y 10..70: column 10 of the crop is the image's column 0
    assert np.asarray(out)[0, 10].tolist() == np.asarray(im)[10, 0].tolist()
    assert np.asarray(out)[0, 0].tolist() == [0, 0, 0]  # outside the image: black
