"""``python -m crossentropy``: the command line."""

from crossentropy.cli import main

raise SystemExit(main())
