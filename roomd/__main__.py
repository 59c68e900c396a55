"""Run roomd as ``python -m roomd``."""

from roomd.cli import main

raise SystemExit(main())
