"""What the sandbox's file system holds, as data: the bubblewrap command is built from a ``Layout``.

Only ``/usr`` (read-only, with the usual ``/lib``, ``/lib64``, ``/bin`` links), the interpreter, its
standard library, NumPy (and ``numpy.libs``), pyseccomp and the two runner files exist inside, each
bound read-only at a neutral path under ``/opt``. Every bind's source is a path that exists and every
target lies in bubblewrap's own tmpfs root, so no layout of CPython needs a mount point created inside
a read-only tree (pyenv, venvs of Debian's ``/usr/bin/python3``, python.org images, uv Pythons).
Children cover ``/proc`` (runner.py), so the bind sources in the mount table are not visible to
learner code either.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from grader.sandbox.limits import BWRAP

RUNNER = Path(__file__).with_name("runner.py")
WIRE = Path(__file__).with_name("wire.py")
NETWORKS = Path(__file__).with_name("networks.py")
PREFIX = "/opt/python"
SITE = "/opt/site"
THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "LANG": "C.UTF-8"}
NAMESPACE_FLAGS = (
    *("--unshare-all", "--unshare-user", "--uid", "65534", "--gid", "65534", "--hostname", "sandbox"),
    "--die-with-parent",
    "--as-pid-1",  # the zygote is the namespace's init: no other unfiltered process in there
    *("--new-session", "--cap-drop", "ALL", "--clearenv"),
)


@dataclass(frozen=True)
class Bind:
    """A read-only bind of ``source`` (a host path that exists) at ``target`` inside the sandbox."""

    source: Path
    target: str


@dataclass(frozen=True)
class Layout:
    """The sandbox's file system and the interpreter command, before they become bwrap arguments."""

    binds: tuple[Bind, ...]
    links: tuple[tuple[str, str], ...]  # (what the link points to, where it is)
    hidden: tuple[str, ...]  # folders covered by an empty tmpfs (the base interpreter's own packages)
    python: str
    library_path: str
    env: dict[str, str] = field(default_factory=dict)

    def argv(self, control_fd: int, setup: str) -> list[str]:
        """The full bubblewrap command; ``setup`` is the runner's JSON configuration."""
        command = [BWRAP, *NAMESPACE_FLAGS]
        for target, where in self.links:
            command += ["--symlink", target, where]
        for bind in self.binds:
            command += ["--ro-bind", str(bind.source), bind.target]
        for folder in self.hidden:
            command += ["--tmpfs", folder]
        command += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--remount-ro", "/"]  # noqa: S108
        command += ["--chdir", "/"]
        env = dict(
            self.env,
            LD_LIBRARY_PATH=self.library_path,
            PATH="/usr/bin",
            HOME="/tmp",  # noqa: S108
            GRADLAB_SANDBOX_FD=str(control_fd),
            GRADLAB_SANDBOX_SETUP=setup,
        )
        for key, value in env.items():
            command += ["--setenv", key, value]
        return [*command, self.python, "-I", "-S", "-B", "/opt/sandbox/runner.py", SITE]

    def targets(self) -> list[str]:
        return [bind.target for bind in self.binds]

    def exposed(self, host_paths: list[str]) -> list[tuple[str, str]]:
        """(host path, where a child would see it) for each of ``host_paths`` a bind makes readable inside.

        A path is exposed when it lies under a bind's source and the place it lands inside is not
        covered by a hidden folder. The start check: the project and the database must not be.
        """
        found = []
        for host_path in host_paths:
            real = Path(os.path.realpath(host_path))
            for bind in self.binds:
                source = Path(os.path.realpath(bind.source))
                if not real.is_relative_to(source):
                    continue
                inside = PurePosixPath(bind.target) / real.relative_to(source)
                if not any(inside.is_relative_to(folder) for folder in self.hidden):
                    found.append((host_path, str(inside)))
        return found


@dataclass(frozen=True)
class PythonFiles:
    """Where this interpreter's pieces are on the host."""

    executable: Path
    stdlib: Path
    platstdlib: Path
    libraries: tuple[Path, ...]
    numpy: Path
    numpy_libs: Path | None
    seccomp: Path | None

    @classmethod
    def find(cls) -> PythonFiles:
        paths = sysconfig.get_paths()
        executable = Path(sys.executable).resolve()
        base = Path(sys.base_prefix).resolve()
        libraries: list[Path] = []
        for folder in {base / "lib", executable.parent.parent / "lib"}:
            libraries += sorted(folder.glob("libpython*.so*"))
        numpy_dir = Path(np.__file__).resolve().parent
        libs = numpy_dir.parent / "numpy.libs"
        spec = importlib.util.find_spec("pyseccomp")
        return cls(
            executable=executable,
            stdlib=Path(paths["stdlib"]).resolve(),
            platstdlib=Path(paths["platstdlib"]).resolve(),
            libraries=tuple(dict.fromkeys(path.resolve() for path in libraries if path.is_file())),
            numpy=numpy_dir,
            numpy_libs=libs if libs.is_dir() else None,
            seccomp=Path(spec.origin).resolve() if spec and spec.origin else None,
        )


def host_links() -> tuple[tuple[str, str], ...]:
    """``/lib``, ``/lib64``, ``/bin``, ``/sbin`` as the host has them when they are links into /usr."""
    links = []
    for name in ("lib", "lib64", "bin", "sbin", "lib32", "libx32"):
        path = Path("/") / name
        if path.is_symlink():
            links.append((os.readlink(path), f"/{name}"))
    return tuple(links)


def bwrap_layout(files: PythonFiles | None = None) -> Layout:
    """The sandbox's tree: the interpreter at ``/opt/python``, NumPy under ``/opt/site``, the runner."""
    files = files or PythonFiles.find()
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    binds = [Bind(Path("/usr"), "/usr")]
    for name in ("lib", "lib64", "bin", "sbin"):
        path = Path("/") / name
        if path.is_dir() and not path.is_symlink():
            binds.append(Bind(path, f"/{name}"))
    binds.append(Bind(files.executable, f"{PREFIX}/bin/{version}"))
    binds += [Bind(library, f"{PREFIX}/lib/{library.name}") for library in files.libraries]
    # The interpreter finds its prefix from the landmark os.py under <prefix>/lib/pythonX.Y and its
    # extension modules under <prefix>/<platlibdir>/pythonX.Y/lib-dynload.
    binds.append(Bind(files.stdlib, f"{PREFIX}/lib/{version}"))
    dynload = files.platstdlib / "lib-dynload"
    if files.platstdlib != files.stdlib and dynload.is_dir():
        binds.append(Bind(files.platstdlib, f"{PREFIX}/{sys.platlibdir}/{version}"))
    hidden = []
    own_packages = files.stdlib / "site-packages"
    if own_packages.is_dir():  # only a folder that exists can be covered (no mkdir in a read-only tree)
        hidden.append(f"{PREFIX}/lib/{version}/site-packages")
    binds.append(Bind(files.numpy, f"{SITE}/numpy"))
    if files.numpy_libs is not None:
        binds.append(Bind(files.numpy_libs, f"{SITE}/numpy.libs"))
    if files.seccomp is not None:
        binds.append(Bind(files.seccomp, f"{SITE}/pyseccomp.py"))
    binds += [Bind(RUNNER, "/opt/sandbox/runner.py"), Bind(WIRE, "/opt/sandbox/wire.py")]
    binds.append(Bind(NETWORKS, "/opt/sandbox/networks.py"))
    return Layout(
        binds=tuple(binds),
        links=host_links(),
        hidden=tuple(hidden),
        python=f"{PREFIX}/bin/{version}",
        library_path=f"{PREFIX}/lib",
        env=dict(THREAD_ENV),
    )


def process_command(scratch: Path, files: PythonFiles | None = None) -> list[str]:
    """Without bubblewrap: the same runner, with a path holding only NumPy (and pyseccomp) links."""
    files = files or PythonFiles.find()
    site = scratch / "site"
    site.mkdir()
    (site / "numpy").symlink_to(files.numpy)
    if files.numpy_libs is not None:
        (site / "numpy.libs").symlink_to(files.numpy_libs)
    if files.seccomp is not None:
        (site / "pyseccomp.py").symlink_to(files.seccomp)
    os.chmod(scratch, 0o755)  # noqa: S103 - readable by the unprivileged uid the children switch to
    return [str(files.executable), "-I", "-S", "-B", str(RUNNER), str(site)]
