"""`python -m hjepa` runs the command line."""

import sys

from hjepa.cli import main

sys.exit(main())
