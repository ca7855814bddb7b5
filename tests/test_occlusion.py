"""Occlusion and framing of the real proxy: occluders hide keypoints as v=1, cropped cameras leave
keypoints out as v=0, the synthetic settings change nothing, shares, determinism, bad settings."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.ndimage import minimum_filter

from aims_lib import taxonomy
from aims_lib.camera import OCCLUSION_TOL, Camera, keypoint_visibility, project, sample_camera, to_camera
from aims_lib.data.format import check_keypoints_2d
from aims_lib.synth import occlusion as oc
from aims_lib.synth.render import Renderer, sample_appearance

SIZE = 96
KP = {name: i for i, name in enumerate(taxonomy.KEYPOINTS)}
LEG_JOINTS = [KP[f"{s}_{j}"] for j in ("knee", "ankle") for s in ("left", "right")]
KNEES, ANKLES = LEG_JOINTS[:2], LEG_JOINTS[2:]


@dataclasses.dataclass(frozen=True)
class Body:
    vertices: np.ndarray
    keypoints: np.ndarray
    faces: np.ndarray
    template: np.ndarray
    parts: np.ndarray

    @property
    def centre(self) -> np.ndarray:
        return 0.5 * (self.vertices.min(0) + self.vertices.max(0))

    @property
    def extent(self) -> float:
        return float(0.5 * np.linalg.norm(self.vertices.max(0) - self.vertices.min(0)))


@pytest.fixture(scope="module")
def bodies() -> dict[str, Body]:
    """The procedural infant in three classes, as the generator poses it."""
    from aims_lib.body import DEFAULT_BETAS, coco17_keypoints, load_body_model, vertex_parts
    from aims_lib.synth.poses import sample_poses

    model = load_body_model(None, num_betas=DEFAULT_BETAS)
    labels = ["Supine Lying", "Sitting w/o Support", "Standing"]
    poses = sample_poses(labels, np.random.default_rng(0), model, np.zeros((len(labels), model.num_betas)))
    keypoints = np.asarray(coco17_keypoints(poses.vertices, poses.joints), dtype=np.float64)
    faces, template = np.asarray(model.faces, dtype=np.int64), model.v_template.detach().numpy()
    parts = vertex_parts(model)
    return {
        label: Body(np.asarray(poses.vertices[i], dtype=np.float64), keypoints[i], faces, template, parts)
        for i, label in enumerate(labels)
    }


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    with Renderer(SIZE) as r:
        yield r


def _occluder(rng: np.random.Generator, body: Body, camera: Camera, kind: str):
    only = oc.Occlusion(share=1.0, **{k: float(k == kind) for k in oc.OCCLUDERS})
    return oc.sample_occluder(rng, body.vertices, body.keypoints, camera, SIZE, only)


def _top_camera(body: Body, seed: int) -> Camera:
    return sample_camera(np.random.default_rng(seed), body.centre, body.extent, SIZE, elevation_deg=(75.0, 85.0))


def _render(renderer: Renderer, body: Body, camera, props) -> tuple[np.ndarray, object]:
    appearance = sample_appearance("real", np.random.default_rng(0))
    result = renderer.render(body.vertices, body.faces, camera, appearance, body.template, body.parts, props)
    return keypoint_visibility(body.keypoints, camera.K, camera.R, camera.T, result.depth, SIZE), result


def test_blanket_over_the_legs_marks_them_occluded(renderer: Renderer, bodies: dict[str, Body]) -> None:
    body = bodies["Supine Lying"]
    knees_hidden = 0
    for seed in range(4):
        camera = _top_camera(body, seed)
        blanket = _occluder(np.random.default_rng(seed), body, camera, "blanket")
        assert blanket.metadata["occluder"] == "blanket"
        assert blanket.is_watertight and blanket.is_winding_consistent
        alone, bare = _render(renderer, body, camera, [])
        vis, covered = _render(renderer, body, camera, [blanket])
        assert np.all(alone[LEG_JOINTS] == 2)  # from above, the legs of a supine infant show
        assert np.all(vis[ANKLES] == 1)  # the blanket hides them: labelled, not visible
        knees_hidden += int(np.all(vis[KNEES] == 1))  # when it starts above the knees
        pixels = project(body.keypoints[LEG_JOINTS], camera.K, camera.R, camera.T)
        assert np.all((pixels > -0.5) & (pixels < SIZE - 0.5))  # with coordinates in the image
        assert (vis == 2).sum() >= 6 and vis[KP["nose"]] == 2  # the head stays visible
        # The mask is the visible infant's: the blanket is not in it, the legs under it leave it.
        in_front = (covered.depth > 0) & ((bare.depth == 0) | (covered.depth < bare.depth - 1e-3))
        assert in_front.sum() > 50 and not covered.mask[in_front].any()
        assert covered.mask.sum() < bare.mask.sum() and np.all(covered.mask <= bare.mask)
    assert knees_hidden >= 2


@pytest.mark.parametrize("kind", oc.OCCLUDERS)
def test_what_an_occluder_covers_is_flagged_occluded(renderer: Renderer, bodies: dict[str, Body], kind: str) -> None:
    """Honest labels: a keypoint whose pixel shows the occluder in front of the body gets v=1;
    an occluder never makes a hidden keypoint visible; each kind hides something."""
    hidden_any = 0
    for seed, body in enumerate(bodies.values()):
        camera = sample_camera(np.random.default_rng(10 + seed), body.centre, body.extent, SIZE, fill=(0.6, 0.9))
        occluder = _occluder(np.random.default_rng(seed), body, camera, kind)
        alone, bare = _render(renderer, body, camera, [])
        vis, covered = _render(renderer, body, camera, [occluder])
        pixels = np.floor(project(body.keypoints, camera.K, camera.R, camera.T) + 0.5).astype(int)
        inside = np.all((pixels >= 0) & (pixels < SIZE), axis=1)
        rows, cols = pixels[inside, 1], pixels[inside, 0]
        under = covered.depth[rows, cols] < bare.depth[rows, cols] - 1e-3
        assert np.all(vis[inside][under] == 1)
        assert np.all(vis[alone == 1] == 1) and np.array_equal(vis == 0, alone == 0)
        without = keypoint_visibility(body.keypoints, camera.K, camera.R, camera.T, covered.body_depth, SIZE)
        np.testing.assert_array_equal(without, alone)  # what keeps_enough compares against
        hidden_any += int(((alone == 2) & (vis == 1)).any())
    assert hidden_any >= 2


def test_occluders_stand_in_front_of_the_body_they_cover(bodies: dict[str, Body]) -> None:
    """Without rendering: every occluder vertex lies more than the visibility test's tolerance
    nearer the camera than each body vertex within a pixel of it (a z-buffer of the body
    vertices, 1-pixel cells), so keypoint_visibility flags what it covers."""
    body = bodies["Sitting w/o Support"]
    rng = np.random.default_rng(4)
    for kind in oc.OCCLUDERS * 2:
        camera = sample_camera(rng, body.centre, body.extent, SIZE)
        mesh = _occluder(rng, body, camera, kind)
        body_cells = np.floor(project(body.vertices, camera.K, camera.R, camera.T)).astype(int)
        occ_cells = np.floor(project(np.asarray(mesh.vertices), camera.K, camera.R, camera.T)).astype(int)
        origin = np.minimum(body_cells.min(0), occ_cells.min(0)) - 1
        shape = tuple(np.maximum(body_cells.max(0), occ_cells.max(0)) - origin + 2)
        nearest = np.full(shape, np.inf)
        np.minimum.at(nearest, tuple((body_cells - origin).T), to_camera(body.vertices, camera.R, camera.T)[:, 2])
        nearest = minimum_filter(nearest, size=3, mode="constant", cval=np.inf)
        occ_z = to_camera(np.asarray(mesh.vertices), camera.R, camera.T)[:, 2]
        assert np.all(nearest[tuple((occ_cells - origin).T)] - occ_z > OCCLUSION_TOL)


def test_cropped_framing_leaves_keypoints_outside(bodies: dict[str, Body]) -> None:
    cropped = next(s for s in oc.REAL.framing.shots if s.overflow is not None)
    settings = dataclasses.replace(oc.REAL, framing=oc.Framing((dataclasses.replace(cropped, share=1.0),), 8))
    rng = np.random.default_rng(1)
    outside_images = 0
    for _ in range(12):
        body = bodies["Supine Lying"]
        for _ in range(20):  # the generator's redraw loop
            camera = oc.camera_for(rng, body.centre, body.extent, SIZE, settings.framing)
            vis = keypoint_visibility(body.keypoints, camera.K, camera.R, camera.T, np.zeros((SIZE, SIZE)), SIZE)
            if oc.keeps_enough(vis, settings, None):
                break
        assert (vis > 0).sum() >= 8
        outside_images += int((vis == 0).any())
    assert outside_images >= 8


def test_synthetic_settings_change_nothing(bodies: dict[str, Body]) -> None:
    body = bodies["Standing"]
    for seed in range(3):
        ours, todays = np.random.default_rng(seed), np.random.default_rng(seed)
        for _ in range(10):
            camera = oc.camera_for(ours, body.centre, body.extent, 256, oc.SYNTHETIC.framing)
            state = ours.bit_generator.state
            assert not oc.draws_occluder(ours, oc.SYNTHETIC.occlusion)
            assert ours.bit_generator.state == state  # no draw
            expected = sample_camera(todays, body.centre, body.extent, 256, fill=(0.6, 0.9))
            for name in ("K", "R", "T"):
                assert np.array_equal(getattr(camera, name), getattr(expected, name))
        assert ours.random() == todays.random()
    flags = np.array([2] * 10 + [1] + [0] * 6)  # 11 in the image: one short
    assert not oc.keeps_enough(flags, oc.SYNTHETIC, None) and oc.keeps_enough(np.r_[flags[:-1], 1], oc.SYNTHETIC, None)


def test_keeps_enough_counts_labelled_and_what_the_occluder_hides() -> None:
    settings = oc.PhotoSettings(oc.Occlusion(share=0.5, max_hidden=0.5), oc.Framing((oc.Shot("s", 1.0),), 10))
    bare = np.array([2] * 8 + [1] * 2 + [0] * 7)  # 8 visible without the occluder
    hides_four = np.array([2] * 4 + [1] * 6 + [0] * 7)
    hides_five = np.array([2] * 3 + [1] * 7 + [0] * 7)
    assert oc.keeps_enough(hides_four, settings, bare)  # 4 <= 0.5 * 8
    assert not oc.keeps_enough(hides_five, settings, bare)
    assert oc.keeps_enough(hides_five, settings, None)  # no occluder: self-occlusion is not limited
    assert not oc.keeps_enough(np.array([2] * 9 + [0] * 8), settings, None)  # 9 inside


def test_occluders_are_deterministic(bodies: dict[str, Body]) -> None:
    body = bodies["Sitting w/o Support"]
    camera = sample_camera(np.random.default_rng(0), body.centre, body.extent, SIZE)
    for kind in oc.OCCLUDERS:
        first, again, other = (
            _occluder(np.random.default_rng(s), body, camera, kind)
            for s in (3, 3, 4)
        )
        assert np.array_equal(first.vertices, again.vertices) and np.array_equal(first.faces, again.faces)
        assert np.array_equal(first.visual.vertex_colors, again.visual.vertex_colors)
        assert not np.array_equal(first.vertices, other.vertices)


def _within(count: int, n: int, p: float, sigmas: float = 4.0) -> bool:
    return abs(count - n * p) <= sigmas * np.sqrt(n * p * (1 - p))


def test_shares_hold_over_many_draws(bodies: dict[str, Body]) -> None:
    rng = np.random.default_rng(5)
    occlusion, framing = oc.REAL.occlusion, oc.REAL.framing
    assert _within(sum(oc.draws_occluder(rng, occlusion) for _ in range(4000)), 4000, occlusion.share)
    body = bodies["Supine Lying"]
    camera = sample_camera(np.random.default_rng(0), body.centre, body.extent, SIZE)
    cheap = dataclasses.replace(occlusion, blanket=0.0)  # the faster kinds, for many draws
    kinds = [
        oc.sample_occluder(rng, body.vertices, body.keypoints, camera, SIZE, cheap).metadata["occluder"] for _ in range(200)
    ]
    assert _within(kinds.count("toy"), 200, cheap.toy / (cheap.toy + cheap.hand)) and "blanket" not in kinds
    shots = [oc.pick_shot(rng, framing).name for _ in range(4000)]
    for shot in framing.shots:
        assert _within(shots.count(shot.name), 4000, shot.share)


def test_real_framing_draws_close_and_high_cameras(bodies: dict[str, Body]) -> None:
    """The close shot's cameras stand higher and nearer than the standard ones."""
    body = bodies["Supine Lying"]
    shots = {s.name: s for s in oc.REAL.framing.shots}
    rng = np.random.default_rng(2)

    def stats(shot: oc.Shot) -> tuple[float, float]:
        cams = [shot.camera(rng, body.centre, body.extent, SIZE) for _ in range(200)]
        offsets = np.array([c.position - body.centre for c in cams])
        elevation = np.degrees(np.arcsin(offsets[:, 1] / np.linalg.norm(offsets, axis=1)))
        return float(elevation.min()), float(np.median(np.linalg.norm(offsets, axis=1)))

    standard, close = stats(shots["standard"]), stats(shots["close"])
    assert close[0] >= 60.0 - 1e-9 and standard[0] < 30.0
    assert close[1] < 0.8 * standard[1]


def test_v1_with_coordinates_and_v0_outside_are_valid_annotations() -> None:
    keypoints = np.zeros((taxonomy.NUM_KEYPOINTS, 3))
    keypoints[:, :2] = 40.0
    keypoints[:, 2] = 2
    keypoints[KP["left_knee"]] = (50.0, 60.0, 1)  # hidden under a blanket
    keypoints[KP["left_ankle"]] = (0.0, 0.0, 0)  # outside the image, written as zeros
    checked = check_keypoints_2d(keypoints.ravel().tolist(), SIZE, SIZE, "test", "annotations[0]")
    np.testing.assert_array_equal(checked, keypoints)


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: oc.Occlusion(share=1.5), "share"),
        (lambda: oc.Occlusion(share=0.3, toy=-1.0), "toy"),
        (lambda: oc.Occlusion(share=0.0, blanket=0.0, toy=0.0, hand=0.0), "blanket, toy and hand"),
        (lambda: oc.Occlusion(share=0.3, max_hidden=1.5), "max_hidden"),
        (lambda: oc.Shot("s", 1.0, fill=(0.9, 0.6)), "fill"),
        (lambda: oc.Shot("s", 1.0, fill=(0.6, 1.2)), "fill"),
        (lambda: oc.Shot("s", 1.0, elevation_deg=(20.0, 95.0)), "elevation_deg"),
        (lambda: oc.Shot("s", 1.0, overflow=(0.5, 1.5)), "overflow"),
        (lambda: oc.Shot("s", -0.1), "share"),
        (lambda: oc.Framing((oc.Shot("a", 0.5), oc.Shot("b", 0.4)), 8), "sum to 1"),
        (lambda: oc.Framing((oc.Shot("a", 0.5), oc.Shot("a", 0.5)), 8), "distinct names"),
        (lambda: oc.Framing((), 8), "shots"),
        (lambda: oc.Framing((oc.Shot("a", 1.0),), 0), "min_keypoints"),
    ],
)
def test_bad_settings_are_named(make, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        make()
