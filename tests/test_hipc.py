import pytest
import torch

from aims_lib import taxonomy
from aims_lib.hipc import HIPC, hierarchical_log_probs


def _inputs(b=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    kp = torch.randn(b, 17, 3, generator=g)
    coarse = torch.softmax(torch.randn(b, 4, generator=g), 1)
    return kp, coarse


def test_output_is_a_distribution_over_fine_classes():
    model = HIPC().eval()
    kp, coarse = _inputs()
    logp = model(kp, coarse)
    assert logp.shape == (6, 12)
    torch.testing.assert_close(logp.exp().sum(1), torch.ones(6))


def test_fine_scores_follow_their_parent():
    groups = torch.tensor(taxonomy.FINE_TO_COARSE_ID)
    logits = torch.tensor([[3.0, -1.0, 0.5, -2.0, 1.0, -4.0, 0.0, 2.0, -1.0, 0.3, -0.5, 1.5]])
    coarse = torch.tensor([[0.1, 0.2, 0.3, 0.4]])
    p = hierarchical_log_probs(logits, coarse, groups).exp()[0]
    for c in range(4):  # each parent's children share exactly its probability
        assert p[groups == c].sum().item() == pytest.approx(coarse[0, c].item(), rel=1e-6)
    # raising a parent's probability raises every child's score, whatever the sign of its logit
    coarse2 = torch.tensor([[0.1, 0.2, 0.1, 0.6]])
    p2 = hierarchical_log_probs(logits, coarse2, groups).exp()[0]
    assert torch.all(p2[groups == 3] > p[groups == 3]) and torch.all(p2[groups == 2] < p[groups == 2])
    # hand-computed: Standing's two children have logits -0.5 and 1.5
    share = torch.softmax(torch.tensor([-0.5, 1.5]), 0)
    torch.testing.assert_close(p[10:], 0.4 * share)


def test_pose_branch_variant_needs_no_coarse_input_and_hierarchical_does():
    kp, coarse = _inputs()
    assert HIPC(hierarchical=False).eval()(kp).shape == (6, 12)
    with pytest.raises(ValueError, match="coarse_probs"):
        HIPC()(kp)
    with pytest.raises(ValueError, match=r"\(B, 17, 3\)"):
        HIPC()(kp[:, :10], coarse)


def test_tnet_starts_at_identity_and_gradients_flow():
    model = HIPC()
    kp, coarse = _inputs()
    torch.testing.assert_close(model.tnet(kp.transpose(1, 2)), torch.eye(3).expand(6, 3, 3))
    loss = torch.nn.functional.nll_loss(model(kp, coarse), torch.arange(6))
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
