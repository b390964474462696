"""`python -m tunefleet.experiments` is the `tunefleet` command."""

import sys

from tunefleet.experiments.cli import main

sys.exit(main())
