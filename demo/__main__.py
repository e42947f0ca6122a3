"""``python -m demo`` (what ``make demo`` runs); ``--help`` lists the options."""

import sys

from demo.run import main

sys.exit(main())
