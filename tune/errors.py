"""The base of the sweep service's user-facing errors (printed by the CLI as one line)."""


class ServiceError(RuntimeError):
    """Tracking store, registry or report cannot do what was asked; the message says why."""
