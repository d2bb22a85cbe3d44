"""``python -m cs3sync emulator``: serve the emulator until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from pathlib import Path

from .config import PROFILES, EmulatorConfig
from .server import Emulator

#: Environment variable a parent process sets to choose the /_admin secret of the emulator it starts.
ADMIN_SECRET_ENV = "CS3SYNC_EMULATOR_ADMIN_SECRET"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", type=Path, required=True, help="directory holding the users' homes")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="cernbox", help="behaviour profile")
    parser.add_argument("--grpc-port", type=int, default=0, help="gRPC port (default: a free one)")
    parser.add_argument("--http-port", type=int, default=0, help="data-plane port (default: a free one)")
    parser.add_argument("--demo", action="store_true", help="seed demo files, project spaces and shares")
    parser.add_argument(
        "--tus",
        action="store_true",
        help="also offer tus uploads in the cernbox profile (Reva master + localfs)",
    )


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    from .demo import DEMO_PROJECTS

    config = EmulatorConfig(
        root=args.root,
        profile=args.profile,
        grpc_port=args.grpc_port,
        http_port=args.http_port,
        projects=dict(DEMO_PROJECTS) if args.demo else {},
    )
    secret = os.environ.get(ADMIN_SECRET_ENV)
    if secret:  # the process that started us chose it (tests, benchmarks)
        config.admin_secret = secret
    if args.tus and "tus" not in (config.upload_protocols or []):
        config.upload_protocols = [*(config.upload_protocols or []), "tus"]
    return config


async def serve(config: EmulatorConfig, demo: bool) -> None:
    config.root.mkdir(parents=True, exist_ok=True)
    async with Emulator(config) as emu:
        if demo:
            from .demo import seed

            await asyncio.to_thread(seed, emu)
        print(f"grpc: {emu.grpc_address}", flush=True)
        print(f"http: {emu.http_url}", flush=True)
        print(f"profile: {config.profile}; users: {', '.join(u.username for u in config.users)}", flush=True)
        print(f"admin secret file: {write_admin_secret(config)}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()


def write_admin_secret(config: EmulatorConfig) -> Path:
    """The /_admin secret in a file only this account can read (never printed)."""
    assert config.state_dir is not None
    path = config.state_dir / "admin-secret"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(config.admin_secret)
    path.chmod(0o600)
    return path


def run(args: argparse.Namespace) -> int:
    asyncio.run(serve(config_from_args(args), args.demo))
    return 0
