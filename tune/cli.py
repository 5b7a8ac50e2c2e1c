"""The `madn` command line.

Every command exits non-zero with a one-line reason on bad input (`madn <command>: error: ...`);
set MADN_TRACEBACK=1 to also print the traceback. Ctrl-C exits with 130 (`madn sweep` first saves
the sweep state, so `--resume` continues it).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence

import madn_core
from tune.commands import (
    correct,
    demo,
    evaluate,
    ingest,
    promote,
    report,
    serve,
    sweep,
    synth,
    train,
)
from tune.commands.common import UsageError
from tune.errors import ServiceError

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="madn",
        description="Unsupervised multimodal (CT + MRI) metal artefact reduction.",
    )
    parser.add_argument("--version", action="version", version=f"madn {madn_core.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    demo.add(commands)
    synth.add(commands)
    ingest.add(commands)
    train.add(commands)
    evaluate.add(commands)
    sweep.add(commands)
    promote.add(commands)
    report.add(commands)
    correct.add(commands)
    serve.add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except (
        UsageError,
        madn_core.ConfigError,
        FileNotFoundError,
        FileExistsError,
        ValueError,
        madn_core.CheckpointError,
        ServiceError,
    ) as error:
        return _fail(args.command, f"error: {error}", 2)
    except KeyboardInterrupt:
        return _fail(args.command, "interrupted", 130)


def _fail(command: str, message: str, code: int) -> int:
    """Print `madn <command>: <message>` (and the traceback with MADN_TRACEBACK=1); `code`."""
    if os.environ.get("MADN_TRACEBACK", "").strip().lower() in ("1", "true", "yes", "on"):
        traceback.print_exc()
    print(f"madn {command}: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
