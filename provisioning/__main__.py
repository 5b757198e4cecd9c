"""``python -m provisioning``: the fleet manager's command (same as ``sunbox-fleet``)."""

import sys

from provisioning.cli import main

sys.exit(main())
