"""``python -m filtag``: the same as the ``filtag`` command."""

from filtag.commands import main

raise SystemExit(main())
