"""`python -m tfxfer`: the `tfxfer` command."""

import sys

from tfxfer.cli.main import main

sys.exit(main())
