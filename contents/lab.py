"""``python -m cs3sync lab`` (what ``make lab`` runs): JupyterLab on the embedded CS3 emulator.

1. Starts the emulator (``python -m cs3sync emulator --demo``, a subprocess) on free loopback ports,
   with its storage in a state directory of its own (``$XDG_STATE_HOME/cs3sync/lab``, or ``--state-dir``).
2. Writes a token file for the demo user (basic login) and a Jupyter config that selects
   ``CS3ContentsManager`` on that emulator, with the journal and Jupyter's runtime files in the same
   state directory and kernels starting next to their notebooks (the emulator's on-disk home is the
   local mount of the CS3 home).
3. Starts JupyterLab (``python -m jupyterlab``) on loopback with a random token, passes every option
   it does not know itself through (``--no-browser``, ``--port=...``, ``--ip=...``, ...), prints the URL.
4. Ctrl-C or SIGTERM stops JupyterLab, then the emulator. Both run in their own process groups, so a
   terminal Ctrl-C reaches only this launcher, which stops them in order.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

DEMO_USERS = {"einstein": "relativity", "marie": "radioactivity", "richard": "superfluidity"}
HOME_LAYOUTS = {"cernbox": "/eos/user/{u0}/{username}", "ocis": "/home/{username}"}
#: The storage's name in the UI (c.CS3SyncAPI.product_name) for each emulator profile.
PRODUCT_NAMES = {"cernbox": "CERNBox", "ocis": "ownCloud"}
STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "cs3sync" / "lab"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``lab`` subcommand's options; every other option is passed to JupyterLab."""
    parser.add_argument("--state-dir", type=Path, default=None, help="default: $XDG_STATE_HOME/cs3sync/lab")
    parser.add_argument("--user", default="einstein", choices=sorted(DEMO_USERS), help="demo user")
    parser.add_argument("--profile", default="cernbox", choices=sorted(HOME_LAYOUTS), help="emulator profile")
    parser.add_argument("--fresh", action="store_true", help="start from fresh demo data and journal")
    parser.epilog = "Other options (--no-browser, --port=N, --ip=ADDR, ...) are passed to JupyterLab."
    known = parser.parse_known_args

    def parse_known_args(
        args: object = None, namespace: object = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = known(args, namespace)  # type: ignore[call-overload]
        # getattr: an argparse Namespace holds what was parsed; "passthrough" is absent until set here.
        parsed.passthrough = [*getattr(parsed, "passthrough", []), *extras]
        return parsed, []

    parser.parse_known_args = parse_known_args  # type: ignore[assignment]


def run(args: argparse.Namespace) -> int:
    return launch(args, list(getattr(args, "passthrough", [])))  # (set by parse_known_args, if it ran)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cs3sync lab")
    add_arguments(parser)
    return run(parser.parse_args(list(sys.argv[1:] if argv is None else argv)))


def wait_for_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with code {process.returncode} during start-up")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{what} did not start listening on port {port} within {STARTUP_TIMEOUT:.0f} s")


def has_option(passthrough: list[str], name: str) -> bool:
    return any(arg == name or arg.startswith(name + "=") for arg in passthrough)


def write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def lab_config(
    *,
    user: str,
    profile: str,
    grpc_port: int,
    http_port: int,
    token_file: Path,
    state: Path,
    local_home: Path,
    token: str,
) -> dict[str, object]:
    home = HOME_LAYOUTS[profile].format(u0=user[:1], username=user)
    return {
        "ServerApp": {
            "contents_manager_class": "contents.manager.CS3ContentsManager",
            "root_dir": str(local_home),
            "jpserver_extensions": {"contents": True},
        },
        "IdentityProvider": {"token": token},
        "CS3Sync": {
            "host": f"127.0.0.1:{grpc_port}",
            "ssl_enabled": False,
            "auth_login_type": "basic",
            "client_id": user,
            "token_path": str(token_file),
            "root_path": home,
            "journal_dir": str(state / "journal" / profile / user),
            "local_mount": str(local_home),
        },
        # "Copy link" copies an address the emulator answers (its stand-in of the web front end's page).
        "CS3SyncAPI": {
            "product_name": PRODUCT_NAMES[profile],
            "public_link_url": f"http://127.0.0.1:{http_port}/s/{{token}}",
        },
    }


def stop(process: subprocess.Popen[bytes] | None, what: str) -> None:
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        print(f"cs3sync lab: {what} did not stop in {STOP_TIMEOUT:.0f} s; killing it", file=sys.stderr)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def launch(args: argparse.Namespace, passthrough: list[str]) -> int:
    state = (args.state_dir or default_state_dir()).expanduser().resolve()
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    storage = state / "storage" / args.profile
    if args.fresh:
        import shutil

        shutil.rmtree(storage, ignore_errors=True)
        shutil.rmtree(state / "journal" / args.profile, ignore_errors=True)
    storage.mkdir(parents=True, exist_ok=True)
    grpc_port, http_port = free_port(), free_port()
    token_file = state / f"{args.user}.token"
    write_private(token_file, DEMO_USERS[args.user] + "\n")
    token = secrets.token_hex(24)
    config_dir = state / "jupyter-config"
    config = lab_config(
        user=args.user,
        profile=args.profile,
        grpc_port=grpc_port,
        http_port=http_port,
        token_file=token_file,
        state=state,
        local_home=storage / args.user,
        token=token,
    )
    write_private(config_dir / "jupyter_server_config.json", json.dumps(config, indent=2))

    env = dict(os.environ)
    env["JUPYTER_CONFIG_DIR"] = str(config_dir)
    env["JUPYTER_RUNTIME_DIR"] = str(state / "jupyter-runtime")

    emulator_cmd = [
        sys.executable, "-m", "cs3sync", "emulator", "--root", str(storage), "--demo",
        "--profile", args.profile, "--grpc-port", str(grpc_port), "--http-port", str(http_port),
    ]  # fmt: skip
    port = None if has_option(passthrough, "--port") else free_port()
    lab_cmd = [sys.executable, "-m", "jupyterlab"]
    if not has_option(passthrough, "--ip"):
        lab_cmd.append("--ip=127.0.0.1")
    if port is not None:
        lab_cmd.append(f"--port={port}")
    # hasattr: os.geteuid exists on POSIX only.
    if hasattr(os, "geteuid") and os.geteuid() == 0 and not has_option(passthrough, "--allow-root"):
        lab_cmd.append("--allow-root")  # containers often run as root; the server listens on loopback
    lab_cmd += passthrough

    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    emulator = lab = None
    try:
        emulator = subprocess.Popen(emulator_cmd, env=env, start_new_session=True)
        wait_for_port(grpc_port, emulator, "the CS3 emulator")
        wait_for_port(http_port, emulator, "the CS3 emulator")
        (storage / args.user).mkdir(parents=True, exist_ok=True)
        lab = subprocess.Popen(lab_cmd, env=env, start_new_session=True)
        if port is not None:
            wait_for_port(port, lab, "JupyterLab")
            print(
                f"\n  cs3sync lab: JupyterLab on the CS3 emulator "
                f"(user {args.user}, profile {args.profile})\n"
                f"  open  http://127.0.0.1:{port}/lab?token={token}\n"
                f"  state {state}\n  Ctrl-C stops JupyterLab and the emulator.\n",
                flush=True,
            )
        else:
            print(f"\n  cs3sync lab: JupyterLab starting; token {token}\n", flush=True)
        while lab.poll() is None and emulator.poll() is None:
            time.sleep(0.5)
        if emulator.poll() is not None:
            print("cs3sync lab: the emulator stopped; stopping JupyterLab", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop(lab, "JupyterLab")
        stop(emulator, "the emulator")
    return 0 if stopping or (lab is not None and lab.returncode in (0, None)) else 1
