"""How each domain's images are made beyond their appearance: bodies, occlusion, framing.

One place for every setting that differs between the synthetic domain and the real proxy, as
data (the appearance styles are :data:`aims_lib.synth.appearance.STYLES`):

* ``body`` (:mod:`aims_lib.synth.body_shift`): the real proxy's bodies lie outside the shape
  space SMPLify fits (every shape component of the body, region directions for head, limb
  lengths per side, girths and belly, clothing and a diaper displaced along the normals);
* ``photo`` (:mod:`aims_lib.synth.occlusion`): occluders over part of the body (hidden keypoints
  ``v=1``), close and high cameras, and images cropped by the border (keypoints outside ``v=0``).

The synthetic domain keeps every draw of the generator before these settings existed, so its
images are byte-identical; nothing downstream (SMPLify, the classifiers) reads these settings.
Both domains still draw poses from one sampler (:func:`aims_lib.synth.poses.sample_poses`): a
pose distribution of the real proxy's own is issue 25's item 2, not yet here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from aims_lib.synth import body_shift, occlusion


@dataclass(frozen=True)
class DomainSettings:
    """A domain's bodies and photographs."""

    body: body_shift.BodyShift
    photo: occlusion.PhotoSettings


DOMAIN_SETTINGS: Final[dict[str, DomainSettings]] = {
    "synthetic": DomainSettings(body_shift.SYNTHETIC, occlusion.SYNTHETIC),
    "real": DomainSettings(body_shift.REAL, occlusion.REAL),
}
