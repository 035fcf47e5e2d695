"""``python -m pipeline.stack``: see ``pipeline.stack.cli``."""

import sys

from pipeline.stack.cli import main

sys.exit(main())
