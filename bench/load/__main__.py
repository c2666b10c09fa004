"""``python -m bench.load [--duration 60] [--connections 32] [--database-url URL] [--json]``"""

from __future__ import annotations

import sys

from bench.load.scenario import main

sys.exit(main())
