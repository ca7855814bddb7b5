r"""A per-infant session report: which AIMS postures one infant showed in a folder of photos or a video.

People who screen an infant's motor development hold photos or a short video of ONE infant,
without boxes. This runs the full model (:class:`aims_lib.predict.AIMSPosePredictor`, which
finds the infant itself) on every photo, or on the video sampled at ``--fps`` frames per second
by the frames' timestamps, and writes one self-contained HTML report (thumbnails embedded as
base64 JPEG/PNG, CSS inline, no external URL) with a CSV and a JSON of the same per-frame data
beside it. As in InfAct and home-video AIMS screening, every frame gets a posture with its
confidence, the session is summarised over its frames, and frames where the model abstains
(no infant, failed 3D fit, uncertain) are flagged "needs review" with the reason. The report says
what the model cannot tell: it is a screening aid, not a diagnosis, trained on rendered images
unless the run names other data, judging single frames; an age is never compared with AIMS norms.

One concept a module:

* :mod:`aims_lib.session.frames`: reading INPUT (:func:`open_input`), its photos or its video
  frames sampled by their timestamps;
* :mod:`aims_lib.session.summary`: the per-frame records and the session summary, pure functions
  of the posture and fine pose each answer commits to (never of its text);
* :mod:`aims_lib.session.report`: the timeline, the HTML (Jinja2, autoescaped) and the three
  outputs, each written atomically;
* :mod:`aims_lib.session.cli`: predicting a session in chunks, :func:`make_report` and the
  command line (:func:`main`).

Command line::

    python -m aims_lib.session INPUT --run RUN --out report.html [--fps 2] [--age-months N] [--device cpu] [--batch-size 16]

INPUT is a folder of photos (``.png .jpg .jpeg .bmp``, sorted by name; EXIF orientation is
honoured by :func:`aims_lib.image_io.read_image`) or a video (``.mp4 .mov .avi .mkv .webm``,
decoded with PyAV, its display rotation applied). ``--out`` must end in ``.html``; ``<stem>.csv``
and ``<stem>.json`` are written beside it, each atomically, and none of the three may be an input.
An unreadable photo (or a video that stops decoding part-way) is reported in the report, its
CSV row and on stderr, and the other frames are still predicted.

Exit status: 0 when at least one frame was predicted and the report was written; 1 when the
predictor cannot be loaded, no frame could be predicted (the report is still written, listing
the unreadable files) or an output cannot be written; 2 for bad arguments, checked before the
model loads: a missing input, a folder without photos, a file that is neither a folder nor a
video, a video without a decodable frame, an output that is no ``.html`` file or would overwrite
an input, a ``--device`` this machine lacks.
"""

from aims_lib.session.cli import main, make_report, predict_session
from aims_lib.session.frames import SessionInput, SessionInputError, open_input
from aims_lib.session.summary import FrameRecord, plain_summary, summarise, training_data

__all__ = ["FrameRecord", "SessionInput", "SessionInputError", "main", "make_report", "open_input", "plain_summary",
           "predict_session", "summarise", "training_data"]
