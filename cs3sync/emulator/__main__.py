"""``python -m cs3sync.emulator`` = ``python -m cs3sync emulator``."""

import sys

from cs3sync.cli import main

raise SystemExit(main(["emulator", *sys.argv[1:]]))
