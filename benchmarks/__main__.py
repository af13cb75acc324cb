"""`python -m benchmarks`: the benchmark suite (`benchmarks.suite`); see `--help`."""

import sys

from benchmarks.suite import main

sys.exit(main())
