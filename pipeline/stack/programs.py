"""Finding the programs the stack runs: the Google Cloud CLI (with its emulators), Java and ``redis-server``."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from pipeline.stack.settings import PrerequisiteError

# Where Google's packages and installers put the Cloud CLI; tried only when `gcloud` is not on PATH.
_SDK_FALLBACKS = ("/usr/lib/google-cloud-sdk", "/usr/share/google-cloud-sdk", "/opt/google-cloud-sdk")


def cloud_sdk_root(environ: dict[str, str] | None = None, fallbacks: Sequence[str] = _SDK_FALLBACKS) -> Path:
    """The Google Cloud CLI's installation folder.

    ``CLOUDSDK_ROOT`` wins; otherwise the folder above ``bin/gcloud`` found on PATH (symlinks resolved, as
    Debian links ``/usr/bin/gcloud`` into ``/usr/lib/google-cloud-sdk``); otherwise the usual install folders.
    """
    env = os.environ if environ is None else environ
    if env.get("CLOUDSDK_ROOT"):
        root = Path(env["CLOUDSDK_ROOT"])
        if not (root / "bin").is_dir():
            raise PrerequisiteError(
                f"CLOUDSDK_ROOT={root} is not a Google Cloud CLI installation (it has no bin/ folder). "
                "Unset it to find the CLI from `gcloud` on PATH, or point it at the CLI's root folder."
            )
        return root
    candidates = [Path(p) for p in fallbacks]
    gcloud = shutil.which("gcloud", path=env.get("PATH", os.defpath))
    if gcloud:
        root = Path(gcloud).resolve().parent.parent
        # A wrapper script instead of a symlink leaves us in e.g. /usr: then try the usual folders.
        if _is_sdk_root(root) or not any(_is_sdk_root(c) for c in candidates):
            return root
    for candidate in candidates:
        if _is_sdk_root(candidate):
            return candidate
    raise PrerequisiteError(
        "The Google Cloud CLI was not found: no `gcloud` on PATH and CLOUDSDK_ROOT is not set. Install it from "
        "Google's Debian packages (https://cloud.google.com/sdk/docs/install#deb) with its emulators: "
        "apt-get install google-cloud-cli google-cloud-cli-pubsub-emulator google-cloud-cli-spanner-emulator; "
        "or set CLOUDSDK_ROOT to the CLI's root folder."
    )


def _is_sdk_root(path: Path) -> bool:
    return (path / "bin" / "gcloud").exists() and (path / "lib" / "gcloud.py").exists()


def java_executable(environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    if env.get("JAVA_HOME") and os.access(Path(env["JAVA_HOME"]) / "bin" / "java", os.X_OK):
        return str(Path(env["JAVA_HOME"]) / "bin" / "java")
    java = shutil.which("java", path=env.get("PATH", os.defpath))
    if java is None:
        raise PrerequisiteError(
            "Java was not found (no JAVA_HOME, no `java` on PATH): the Pub/Sub emulator runs on Java 11 or "
            "newer. Install it with: apt-get install default-jre-headless"
        )
    return java


def redis_server_executable(environ: dict[str, str] | None = None, *, install: bool = True) -> str:
    """``redis-server`` from PATH; when missing and running as root, installed with apt-get (once)."""
    env = os.environ if environ is None else environ
    path = env.get("PATH", os.defpath)
    found = shutil.which("redis-server", path=path)
    if found:
        return found
    if install and os.geteuid() == 0 and shutil.which("apt-get"):
        print("stack: redis-server is missing; installing Debian's redis-server with apt-get", flush=True)
        apt_env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (["apt-get", "update"], ["apt-get", "install", "-y", "redis-server"]):
            result = subprocess.run(command, env=apt_env, capture_output=True, text=True)
            if result.returncode != 0:
                raise PrerequisiteError(
                    f"Installing redis-server failed ({' '.join(command)} exited {result.returncode}):\n"
                    f"{result.stderr.strip()[-2000:]}"
                )
        found = shutil.which("redis-server", path=path) or shutil.which("redis-server")
        if found:
            return found
    raise PrerequisiteError(
        "redis-server was not found on PATH. Install Debian's package: sudo apt-get install redis-server "
        "(`python -m pipeline.stack start` installs it itself when run as root)."
    )
