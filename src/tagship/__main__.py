"""`python -m tagship`: the same as the `tagship` command (tests run the code under test this way)."""

import sys

from tagship.cli import main

sys.exit(main())
