"""``python -m factorcore``: the command line."""

import sys

from factorcore.cli import main

sys.exit(main())
