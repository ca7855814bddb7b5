import numpy as np
import pytest
import torch

from aims_lib import taxonomy as tx

# The paper's Table 1, transcribed: coarse label -> fine labels in order.
TABLE_1 = {
    "Prone": ["Prone Lying", "Forearm Support", "Reciprocal Crawling", "Four-Point Kneeling"],
    "Supine": ["Supine Lying", "Hands to Knee/Feet", "Rolling"],
    "Sitting": ["Sitting w/ Support", "Sitting w/ Arm Support", "Sitting w/o Support"],
    "Standing": ["Four-Point Standing", "Standing"],
}


def test_taxonomy_matches_table_1():
    assert list(tx.COARSE) == list(TABLE_1)
    assert list(tx.FINE) == [f for fines in TABLE_1.values() for f in fines]
    for coarse, fines in TABLE_1.items():
        for f in fines:
            assert tx.FINE_TO_COARSE[f] == coarse
            assert tx.FINE_TO_COARSE_ID[tx.FINE.index(f)] == tx.COARSE.index(coarse)
    assert (tx.NUM_COARSE, tx.NUM_FINE) == (4, 12)


def test_ids_are_stable():
    assert tx.fine_id("Prone Lying") == 0
    assert tx.fine_id("Standing") == 11
    assert tx.coarse_id("standing") == 3
    assert tx.FINE_TO_COARSE_ID == (0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3)


@pytest.mark.parametrize(
    "spelling", ["Sitting w/ Support", "sitting_with_support", "SITTING WITH SUPPORT", " sitting-with-support "]
)
def test_lenient_parsing_folds_spellings(spelling):
    assert tx.parse_fine(spelling) == "Sitting w/ Support"


def test_without_is_not_with():
    assert tx.parse_fine("sitting without support") == "Sitting w/o Support"
    assert tx.parse_fine("Sitting w/o Support") == "Sitting w/o Support"
    assert tx.parse_fine("four point kneeing") == "Four-Point Kneeling"  # the paper's typo
    assert tx.parse_fine("hands_to_knee_feet") == "Hands to Knee/Feet"


def test_unknown_label_lists_valid_ones():
    with pytest.raises(tx.LabelError) as err:
        tx.parse_fine("cartwheel")
    assert "cartwheel" in str(err.value) and "Forearm Support" in str(err.value)
    with pytest.raises(tx.LabelError, match="valid: Prone, Supine"):
        tx.parse_coarse("crawling")
    with pytest.raises(tx.LabelError):
        tx.parse_fine(3)  # type: ignore[arg-type]


def test_syrip_postures():
    assert tx.coarse_from_syrip_posture("All Fours") == {"Prone", "Standing"}
    assert tx.coarse_from_syrip_posture("supine") == {"Supine"}
    assert tx.coarse_from_syrip_posture("Unknown") == frozenset()
    with pytest.raises(tx.LabelError, match="SyRIP posture"):
        tx.coarse_from_syrip_posture("Lying")


def test_keypoint_layout():
    assert len(tx.KEYPOINTS) == 17 and tx.KEYPOINTS[0] == "nose"
    assert len(tx.SKELETON) == 19
    for a, b in tx.FLIP_PAIRS:
        assert tx.KEYPOINTS[a].replace("left", "right") == tx.KEYPOINTS[b]
    perm = tx.flip_permutation()
    assert sorted(perm) == list(range(17)) and perm[5] == 6 and perm[0] == 0


def test_normalisation_hand_computed():
    kp = np.zeros((17, 3))
    kp[tx.LEFT_HIP] = (1.0, 2.0, 3.0)
    kp[tx.RIGHT_HIP] = (3.0, 2.0, 3.0)  # pelvis (2, 2, 3)
    kp[tx.NOSE] = (2.0, 6.0, 3.0)  # 4 above the pelvis
    out = tx.normalise_keypoints_3d(kp)
    np.testing.assert_allclose(out[tx.NOSE], (0.0, 1.0, 0.0))
    np.testing.assert_allclose(out[tx.LEFT_HIP], (-0.25, 0.0, 0.0))
    np.testing.assert_allclose(out[1], (-0.5, -0.5, -0.75))  # (0,0,0) - (2,2,3), / 4


def test_normalisation_batched_torch_matches_numpy():
    rng = np.random.default_rng(0)
    kp = rng.normal(size=(5, 17, 3))
    np.testing.assert_allclose(
        tx.normalise_keypoints_3d(torch.from_numpy(kp)).numpy(), tx.normalise_keypoints_3d(kp)
    )
    # scale and translation invariant
    np.testing.assert_allclose(tx.normalise_keypoints_3d(kp * 7 + 3), tx.normalise_keypoints_3d(kp))


def test_normalisation_rejects_degenerate():
    with pytest.raises(ValueError, match="degenerate"):
        tx.normalise_keypoints_3d(np.zeros((17, 3)))
