"""`python -m sim ...` is the same as `csfsim ...`."""

import sys

from sim.cli import main

sys.exit(main())
