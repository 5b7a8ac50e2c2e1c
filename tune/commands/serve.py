"""`madn serve`: serve a registered model over HTTP with `mlflow models serve`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def add(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "serve",
        help="serve a registered model over HTTP (mlflow models serve, from this venv)",
        description=(
            "Run `mlflow models serve` on a registered model (default models:/madn@champion) "
            "with this Python environment: POST scanner-unit slices (CT in HU) of any size to "
            'http://HOST:PORT/invocations as {"inputs": [[[[...]]]], "params": '
            '{"spacing_mm": 0.8}}; the reply holds the corrected slices (docs/serving.md).'
        ),
    )
    parser.add_argument("-m", "--model", default="models:/madn@champion", help="model URI")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("-p", "--port", type=int, default=5001, help="port (default 5001)")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default sqlite:///mlflow.db)")
    parser.set_defaults(handler=run)


def serve_command(args: argparse.Namespace, tracking_uri: str) -> tuple[list[str], dict]:
    """(argv, environment) of the `mlflow models serve` process: this interpreter's mlflow,
    with its bin folder first on PATH (the server starts `uvicorn` by name)."""
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "MLFLOW_TRACKING_URI": tracking_uri,
    }
    argv = [sys.executable, "-m", "mlflow", "models", "serve", "-m", args.model]
    argv += ["--env-manager", "local", "--host", args.host, "--port", str(args.port)]
    argv += ["--workers", str(args.workers)]
    return argv, env


def run(args: argparse.Namespace) -> int:
    from tune import tracking
    from tune.commands.common import UsageError

    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port}: expected a TCP port in 1-65535")
    uri = tracking.connect(args.tracking_uri, create=False)
    argv, env = serve_command(args, uri)
    print(f"serve: {args.model} on http://{args.host}:{args.port}/invocations", flush=True)
    os.execve(sys.executable, argv, env)
    return 0  # not reached: the server replaces this process
