"""Subcommands of the ``foolkit`` CLI, one module each (see ``foolkit.cli``)."""
