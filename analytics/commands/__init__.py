"""Command groups of the `ardesk` CLI, one module each."""
