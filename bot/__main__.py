"""`python -m bot` is `statement-bot`."""

import sys

from bot.cli import main

sys.exit(main())
