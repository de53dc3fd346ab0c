"""Entry point of the frozen ``ibpanel-sim`` executable (the practice exchange on its own)."""

from __future__ import annotations

import sys

if __name__ == "__main__":
    from ibpanel.sim.cli import main

    sys.exit(main())
