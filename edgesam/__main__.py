"""``python -m edgesam`` runs the command-line interface."""

from edgesam.cli import main

raise SystemExit(main())
