"""`python -m analytics.cli`: the same as the `ardesk` command."""

from analytics.cli.main import main

raise SystemExit(main())
