"""One module per `charctl` subcommand; each defines `register(subparsers)`."""
