"""``python -m aims_lib.session``: the command line (:mod:`aims_lib.session.cli`)."""

import sys

from aims_lib.session.cli import main

sys.exit(main())
