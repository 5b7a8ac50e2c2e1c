"""One module per `madn` subcommand: each exposes `add(subparsers)` that registers its parser
and handler. Heavy imports happen inside the handlers so that `madn --help` stays fast."""
