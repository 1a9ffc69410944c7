"""The container image, built for real with podman from a local Debian base, runs ``replywatch --version`` and
``replywatch check-config`` as the image's own user.

No container registry is reachable here and ``podman run`` needs cgroups this machine does not give, so:
debootstrap makes a minimal bookworm, imported under the base image's own name (``FROM
debian:bookworm-slim`` then resolves locally); ``podman build --isolation=chroot`` builds the Dockerfile;
``podman image mount`` plus ``chroot --userspec`` runs the image's commands as its user.
scripts/test-servers.sh installs podman and debootstrap; a missing tool or a failed step fails this test
saying which and why.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from monitor import __version__

ROOT = Path(__file__).resolve().parent.parent
BASE = "docker.io/library/debian:bookworm-slim"
IMAGE = "localhost/replywatch:image-test"
MIRROR = "http://deb.debian.org/debian"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
INSTALL_HINT = "run scripts/test-servers.sh (it installs podman and debootstrap)"


def tool(name: str) -> str:
    """The executable ``name``; fails the test saying how to install it."""
    found = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None
    )
    if found is None:
        pytest.fail(f"{name} is not installed: {INSTALL_HINT}", pytrace=False)
    return found


def run(args: Sequence[str], what: str, timeout: float, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run a command; a failure fails the test naming the step, with the command's output."""
    try:
        done = subprocess.run(
            list(args), capture_output=True, text=True, timeout=timeout, check=False, **kwargs
        )  # type: ignore[call-overload]
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"{what}: timed out after {timeout:.0f}s: {' '.join(args)}", pytrace=False)
        raise AssertionError from err
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-6000:]
        pytest.fail(f"{what} failed (exit {done.returncode}): {' '.join(args)}\n{tail}", pytrace=False)
    return done


def ensure_base(podman: str, tmp: Path) -> None:
    """``debian:bookworm-slim`` in podman's local storage, made with debootstrap when missing."""
    if subprocess.run([podman, "image", "exists", BASE], check=False).returncode == 0:
        return
    rootfs = tmp / "rootfs"
    run([tool("debootstrap"), "--variant=minbase", "bookworm", str(rootfs), MIRROR], "debootstrap", 900)
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    run([podman, "import", "-", BASE], "podman import of the debootstrap base", 600, stdin=tar.stdout)
    tar.wait(timeout=60)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The built image, mounted: its root file system."""
    podman = tool("podman")
    ensure_base(podman, tmp_path_factory.mktemp("base"))
    # Docker format: OCI image configs have no HEALTHCHECK, and podman would drop it.
    build = [podman, "build", "--isolation=chroot", "--pull=never", "--format=docker", "-t", IMAGE]
    if HOST_CA.exists():  # this machine reaches PyPI through a proxy whose CA only the host bundle has
        build += [
            "--volume",
            f"{HOST_CA}:/run/host-ca.crt:ro",
            "--build-arg",
            "SSL_CERT_FILE=/run/host-ca.crt",
            "--build-arg",
            "PIP_CERT=/run/host-ca.crt",
        ]
    run([*build, str(ROOT)], "podman build", 1800)
    mount = run([podman, "image", "mount", IMAGE], "podman image mount", 120).stdout.strip()
    try:
        yield Path(mount)
    finally:
        subprocess.run([podman, "image", "unmount", IMAGE], capture_output=True, check=False)


def in_image(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``args`` inside the image's file system as its user (uid 10001), from its working directory."""
    environment = {"PATH": "/opt/replywatch/bin:/usr/bin:/bin", "HOME": "/var/lib/replywatch", **(env or {})}
    command = [
        tool("chroot"),
        "--userspec=10001:10001",
        str(root),
        "sh",
        "-c",
        'cd /var/lib/replywatch && exec "$@"',
        "sh",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=environment, check=False)


def test_image_runs_replywatch_as_its_user(image: Path) -> None:
    version = in_image(image, "replywatch", "--version")
    assert version.returncode == 0, version.stdout + version.stderr
    assert __version__.split("+")[0] in version.stdout + version.stderr
    check = in_image(
        image,
        "replywatch",
        "check-config",
        "-c",
        "/etc/replywatch/examples/minimal.yaml",
        env={"SUPPORT_IMAP_PASSWORD": "not-used"},
    )
    assert check.returncode == 0, check.stdout + check.stderr
    whoami = in_image(image, "python", "-c", "import os; print(os.getuid())")
    assert whoami.stdout.strip() == "10001"


def test_image_config_user_entrypoint_and_health_check(image: Path) -> None:
    podman = tool("podman")
    inspect = json.loads(run([podman, "image", "inspect", IMAGE], "podman image inspect", 60).stdout)[0]
    config = inspect["Config"]
    assert config["User"] == "replywatch"
    assert config["Entrypoint"] == ["replywatch"]
    assert "9687/tcp" in config["ExposedPorts"]
    health = inspect.get("Healthcheck")  # podman keeps a Docker-format image's check beside Config
    assert health is not None and health["Test"] == ["CMD", "python", "-m", "monitor.healthcheck"], inspect
    # The check itself runs in the image: with no replywatch listening it reports unhealthy, not a crash.
    check = in_image(image, "python", "-m", "monitor.healthcheck", "/etc/replywatch/examples/minimal.yaml")
    assert check.returncode == 1 and "/-/healthy" in check.stderr, check.stdout + check.stderr
