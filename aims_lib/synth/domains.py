"""How each domain's images are made beyond their appearance: bodies, poses, occlusion, framing.

One place for every setting that differs between the synthetic domain and the real proxy, as
data (the appearance styles are :data:`aims_lib.synth.appearance.STYLES`):

* ``body`` (:mod:`aims_lib.synth.body_shift`): the real proxy's bodies lie outside the shape
  space SMPLify fits (every shape component of the body, region directions for head, limb
  lengths per side, girths and belly, clothing and a diaper displaced along the normals);
* ``photo`` (:mod:`aims_lib.synth.occlusion`): occluders over part of the body (hidden keypoints
  ``v=1``), close and high cameras, and images cropped by the border (keypoints outside ``v=0``);
* ``pose`` (:mod:`aims_lib.synth.pose_shift`): the real proxy's poses leave the class tables
  (wider and one-sided joint ranges, blends towards a neighbouring class, a hand on the body)
  with labels the class rules still assign (``docs/pose_distributions.md``).

The synthetic domain keeps every draw of the generator before these settings existed, so its
images are byte-identical; nothing downstream (SMPLify, the classifiers) reads these settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from aims_lib.synth import body_shift, occlusion, pose_shift


@dataclass(frozen=True)
class DomainSettings:
    """A domain's bodies, poses and photographs."""

    body: body_shift.BodyShift
    photo: occlusion.PhotoSettings
    pose: pose_shift.PoseShift


DOMAIN_SETTINGS: Final[dict[str, DomainSettings]] = {
    "synthetic": DomainSettings(body_shift.SYNTHETIC, occlusion.SYNTHETIC, pose_shift.SYNTHETIC),
    "real": DomainSettings(body_shift.REAL, occlusion.REAL, pose_shift.REAL),
}
