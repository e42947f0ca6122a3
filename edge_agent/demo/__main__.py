"""``python -m edge_agent.demo`` (what ``make demo`` runs); ``--help`` lists the options."""

import sys

from edge_agent.demo.run import main

sys.exit(main())
