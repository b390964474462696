"""`python -m tunefleet.experiments` is the `tunefleet` command."""

import sys

from tunefleet.experiments.entry import main

sys.exit(main())
