"""CLI subcommands. Each module exposes ``register(subparsers)``; cli.py lists them."""
