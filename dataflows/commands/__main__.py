"""`python -m dataflows.commands`: the same as the `hfl` console script."""

import sys

from dataflows.commands import main

sys.exit(main())
