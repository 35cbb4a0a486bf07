"""`python -m bot.cli` runs the `dcs` CLI."""

import sys

from bot.cli import main

sys.exit(main())
