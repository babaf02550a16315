"""``python -m securepractice`` runs the ``securepractice`` command."""

import sys

from securepractice.cli import main

sys.exit(main())
