"""``python -m dispatch`` runs the CLI."""

import sys

from dispatch.cli import main

sys.exit(main())
