"""One module per ``sunbox`` subcommand group; each exposes ``register(subparsers, common)``."""
