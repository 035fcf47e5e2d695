"""``python -m pipeline.local_runner``: each patch's check on the installed Beam (``patch_table.main``)."""

import sys

from pipeline.local_runner.patch_table import main

sys.exit(main())
