"""Typer subcommands: parse options, call an operation, render its typed result."""
