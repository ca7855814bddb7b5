"""``python -m aims_lib.predict``: the command line (:mod:`aims_lib.predict.cli`)."""

import sys

from aims_lib.predict.cli import main

sys.exit(main())
