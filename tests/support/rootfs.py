"""Tiny stand-ins for Databricks base images: a busybox rootfs with stub tools, packed deterministically.

No image can be pulled on the test machines, so every "base image" is a layer built here from the host's
static busybox. The stubs behave just enough like the real tools for the bot's checks and builds:

- `apt-get` logs its argv to /var/log/dcs-apt.log; `install` creates /var/lib/dcs-apt/<pkg> per package and
  fails like apt (exit 100) for a package named `dcs-test-missing`.
- `pip` logs its argv to `<python root>/pip-installs.log`; an argument starting with `dcs-test-slow` makes
  it sleep 30 s, `dcs-test-chatty-N` makes it print a progress line every 50 ms for N seconds (a download
  streaming its log), one starting with `dcs-test-broken` makes it fail like pip (exit 1), `dcs-test-colour` the same
  in ANSI colours with a carriage return, as pip does on a terminal.
- `apk` (apk=True, for Alpine-like bases; apt=False drops apt-get) logs its argv to /var/log/dcs-apk.log; `add`
  appends to /etc/apk/world (what `apk info` lists) and fails like apk (exit 1) for `dcs-test-missing`.
- `Rscript`/`R` (r=True) log their arguments to /var/log/dcs-r.log; an `-e` expression with
  `install.packages(...)` records `repos=<mirror> packages=<names>` in /var/log/dcs-r-installs.log and creates
  /usr/local/lib/R/site-library/<name>/DESCRIPTION; `dcs-test-missing` only warns, as R does (exit 0), and a
  later `library(name)` of a package that is not there fails like R (exit 1).

Caveat: Debian's busybox-static is built with FEATURE_SH_STANDALONE, so its shell runs any busybox applet
(ls, cp, mv, mkdir, chmod, ps, ip, stat, ...) even where the symlink was left out, and `command -v ps`
answers `ps`. Leaving a tool out (coreutils=False, procps=False, iproute2=False) takes it off PATH: `which`,
`test -x /bin/ps` and running it without a shell (as a container's entrypoint) see it missing.
"""

from __future__ import annotations

import io
import struct
import tarfile
from dataclasses import dataclass
from pathlib import Path

BUSYBOX = Path("/usr/bin/busybox")
# A fixed mtime (2024-01-01) so that the same spec always gives the same layer and the same image id.
EPOCH = 1704067200

APPLETS = (
    "sh", "ls", "cat", "cp", "mv", "rm", "mkdir", "chmod", "chown", "ln", "echo", "printf", "grep", "head",
    "tail", "tr", "env", "id", "readlink", "touch", "test", "sleep", "sed", "sort", "uname", "date", "wc",
    "cut", "true", "false", "which", "basename", "dirname", "tee", "find", "xargs", "expr",
)  # fmt: skip
COREUTILS_APPLETS = frozenset({"ls", "cp", "mv", "mkdir", "chmod"})
PYTHON_LAYOUTS = {
    # python= -> (bin dir, pip log)
    "venv": ("/databricks/python3/bin", "/databricks/python3/pip-installs.log"),
    "conda": ("/databricks/conda/envs/dcs-minimal/bin", "/databricks/conda/pip-installs.log"),
}


class BusyboxUnusable(Exception):
    """The host has no static busybox to build base images from."""


@dataclass(frozen=True)
class BaseSpec:
    """What a fake Databricks base image contains; see `make_base` in tests/conftest.py."""

    python: str | None = "venv"
    bash: bool = True
    sudo: bool = True
    iproute2: bool = True
    acl: bool = True
    java: bool = True
    coreutils: bool = True
    procps: bool = True
    os_id: str = "ubuntu"
    os_version: str = "22.04"
    cmd: tuple[str, ...] | None = None
    marker: str = ""
    apt: bool = True
    apk: bool = False
    r: bool = False

    def __post_init__(self) -> None:
        if self.python is not None and self.python not in PYTHON_LAYOUTS:
            raise ValueError(f"python must be 'venv', 'conda' or None, not {self.python!r}")


def read_static_busybox(path: Path = BUSYBOX) -> bytes:
    """The busybox binary, checked to be statically linked (the rootfs has no libc)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BusyboxUnusable(f"{path} is missing: apt-get install busybox-static") from exc
    if _has_interpreter(data):
        raise BusyboxUnusable(f"{path} is dynamically linked: apt-get install busybox-static")
    return data


def _has_interpreter(elf: bytes) -> bool:
    """True if a 64-bit little-endian ELF asks for a dynamic loader (has a PT_INTERP program header)."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        raise BusyboxUnusable("busybox is not a 64-bit little-endian ELF binary")
    (phoff,) = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    pt_interp = 3
    return any(struct.unpack_from("<I", elf, phoff + i * phentsize)[0] == pt_interp for i in range(phnum))


def rootfs_layer(spec: BaseSpec, busybox: bytes) -> bytes:
    """An uncompressed layer tarball with the base's files, byte-for-byte the same for the same spec."""
    tree = _Tree()
    for directory in ("/root", "/usr/local/bin", "/var/lib/dcs-apt", "/var/log", "/etc"):
        tree.dir(directory)
    tree.dir("/tmp", mode=0o1777)
    tree.file("/bin/busybox", busybox, mode=0o755)
    applets = [a for a in APPLETS if spec.coreutils or a not in COREUTILS_APPLETS]
    applets += ["ps"] * spec.procps + ["ip"] * spec.iproute2
    for applet in applets:
        tree.symlink(f"/bin/{applet}", "busybox")
    tree.symlink("/usr/bin/env", "/bin/busybox")  # for `#!/usr/bin/env ...` lines

    shell = "/bin/bash" if spec.bash else "/bin/sh"
    nobody = "nobody:x:65534:65534:nobody:/nonexistent:/bin/false"
    tree.text("/etc/passwd", f"root:x:0:0:root:/root:{shell}\n{nobody}\n")
    tree.text("/etc/group", "root:x:0:\nnogroup:x:65534:\n")
    tree.text("/etc/os-release", os_release(spec.os_id, spec.os_version))
    tree.text("/etc/dcs-test-base", spec.marker)
    if spec.apt:
        tree.script("/usr/bin/apt-get", APT_GET)
    if spec.apk:
        tree.dir("/var/lib/dcs-apk")
        tree.text("/etc/apk/world", APK_BASE_WORLD)
        tree.script("/sbin/apk", APK)
    if spec.r:
        tree.dir("/usr/local/lib/R/site-library")
        tree.script("/usr/bin/Rscript", RSCRIPT)
        tree.script("/usr/bin/R", RSCRIPT)
    if spec.bash:
        tree.script("/bin/bash", '#!/bin/sh\nexec /bin/sh "$@"\n')
    if spec.sudo:
        tree.script("/usr/bin/sudo", SUDO)
    if spec.acl:
        tree.script("/usr/bin/setfacl", "#!/bin/sh\nexit 0\n")
        tree.script("/usr/bin/getfacl", "#!/bin/sh\nexit 0\n")
    if spec.java:
        tree.script("/usr/bin/java", JAVA)
    if spec.python is not None:
        bin_dir, pip_log = PYTHON_LAYOUTS[spec.python]
        tree.script(f"{bin_dir}/python", PYTHON)
        tree.script(f"{bin_dir}/python3", PYTHON)
        tree.script(f"{bin_dir}/pip", PIP.replace("@PIP_LOG@", pip_log))
    return tree.tarball()


def os_release(os_id: str, version: str) -> str:
    if os_id == "alpine":
        short = ".".join(version.split(".")[:2])
        return (
            'NAME="Alpine Linux"\nID=alpine\n'
            f'VERSION_ID={version}\nPRETTY_NAME="Alpine Linux v{short}"\n'
            'HOME_URL="https://alpinelinux.org/"\nBUG_REPORT_URL="https://gitlab.alpinelinux.org/alpine/aports/-/issues"\n'
        )
    if os_id == "ubuntu":
        codename = {"20.04": "focal", "22.04": "jammy", "24.04": "noble"}.get(version, "")
        lts = " LTS" if version.endswith(".04") and int(version.split(".")[0]) % 2 == 0 else ""
        return (
            f'PRETTY_NAME="Ubuntu {version}{lts}"\nNAME="Ubuntu"\nVERSION_ID="{version}"\n'
            f'VERSION="{version}{lts}"\nVERSION_CODENAME={codename}\nID=ubuntu\nID_LIKE=debian\n'
            'HOME_URL="https://www.ubuntu.com/"\n'
        )
    if os_id == "debian":
        return (
            f'PRETTY_NAME="Debian GNU/Linux {version}"\nNAME="Debian GNU/Linux"\nVERSION_ID="{version}"\n'
            'ID=debian\nHOME_URL="https://www.debian.org/"\n'
        )
    return f'PRETTY_NAME="{os_id} {version}"\nNAME="{os_id}"\nVERSION_ID="{version}"\nID={os_id}\n'


class _Tree:
    """Files of a rootfs, written to tar in sorted order with fixed metadata."""

    def __init__(self) -> None:
        self._entries: dict[str, tarfile.TarInfo] = {}
        self._data: dict[str, bytes] = {}

    def dir(self, path: str, mode: int = 0o755) -> None:
        self._add(path, tarfile.DIRTYPE, mode)

    def file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        info = self._add(path, tarfile.REGTYPE, mode)
        info.size = len(data)
        self._data[info.name] = data

    def text(self, path: str, text: str) -> None:
        self.file(path, text.encode())

    def script(self, path: str, text: str) -> None:
        self.file(path, text.encode(), mode=0o755)

    def symlink(self, path: str, target: str) -> None:
        self._add(path, tarfile.SYMTYPE, 0o777).linkname = target

    def _add(self, path: str, kind: bytes, mode: int) -> tarfile.TarInfo:
        name = path.strip("/")
        parent = name.rpartition("/")[0]
        if parent and parent not in self._entries:
            self.dir(parent)
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime = kind, mode, EPOCH
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        self._entries[name] = info
        return info

    def tarball(self) -> bytes:
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
            for name in sorted(self._entries):
                data = self._data.get(name)
                tar.addfile(self._entries[name], io.BytesIO(data) if data is not None else None)
        return out.getvalue()


LayerTree = _Tree  # public name for other support modules that write layers


APT_GET = r"""#!/bin/sh
# dcs-test stub of apt-get
echo "$*" >> /var/log/dcs-apt.log
command=""
packages=""
skip=""
for arg; do
    if [ -n "$skip" ]; then skip=""; continue; fi
    case "$arg" in
        -o|-c|-t) skip=1 ;;
        -*) ;;
        *) if [ -z "$command" ]; then command="$arg"; else packages="$packages $arg"; fi ;;
    esac
done
[ "$command" = install ] || exit 0
for package in $packages; do
    case "$package" in
        dcs-test-missing|dcs-test-missing=*)
            echo "E: Unable to locate package ${package%%=*}" >&2
            exit 100 ;;
    esac
done
for package in $packages; do
    : > "/var/lib/dcs-apt/${package%%=*}"
done
exit 0
"""

SUDO = r"""#!/bin/sh
# dcs-test stub of sudo: run the command as root (leading flags like -n or -E are ignored)
while [ $# -gt 0 ]; do
    case "$1" in
        -u|-g) shift 2 ;;
        --) shift; break ;;
        -*) shift ;;
        *) break ;;
    esac
done
exec "$@"
"""

JAVA = r"""#!/bin/sh
# dcs-test stub of the Zulu JDK 8 of Databricks runtimes
case "$1" in
    -version|--version)
        echo 'openjdk version "1.8.0_392"' >&2
        echo 'OpenJDK Runtime Environment (Zulu 8.74.0.17-CA-linux64) (build 1.8.0_392-b08)' >&2
        echo 'OpenJDK 64-Bit Server VM (Zulu 8.74.0.17-CA-linux64) (build 25.392-b08, mixed mode)' >&2
        ;;
esac
exit 0
"""

PYTHON = r"""#!/bin/sh
# dcs-test stub of the Databricks Python; it plays the bot's install-stage script (bot/domain/ship.py) too:
# `ship.py collect` ships the pip log (what the stub pip "installed"), `-c` (the final stage's step) removes
# the list of removed paths.
case "$1" in
    --version|-V) echo "Python 3.11.0rc1"; exit 0 ;;
    -m) if [ "$2" = pip ]; then shift 2; exec "$(dirname "$0")/pip" "$@"; fi ;;
    -c) rm -f /.dcs-ship-removed.json; exit 0 ;;
    */ship.py)
        if [ "$2" = collect ]; then
            mkdir -p /dcs-ship
            for log in /databricks/python3/pip-installs.log /databricks/conda/pip-installs.log; do
                if [ -f "$log" ]; then mkdir -p "/dcs-ship$(dirname "$log")"; cp "$log" "/dcs-ship$log"; fi
            done
            echo "[]" > /dcs-ship/.dcs-ship-removed.json
        fi
        exit 0 ;;
esac
exit 0
"""

PIP = r"""#!/bin/sh
# dcs-test stub of pip; `-r FILE` is logged as the requirements in FILE (what pip would install)
set -f
if [ "$1" = --version ] || [ "$1" = -V ]; then
    echo "pip 23.2.1 from /databricks/python3/lib/python3.11/site-packages/pip (python 3.11)"
    exit 0
fi
args=""
while [ $# -gt 0 ]; do
    if [ "$1" = -r ] && [ -f "$2" ]; then args="$args $(tr '\n' ' ' < "$2")"; shift 2; continue; fi
    args="$args $1"; shift
done
set -- $args
echo "$*" >> @PIP_LOG@
for arg; do
    case "$arg" in
        dcs-test-slow*) sleep 30 ;;
        dcs-test-chatty-*)
            seconds=${arg#dcs-test-chatty-}; seconds=${seconds%%[!0-9]*}; i=0
            while [ "$i" -lt $((seconds * 20)) ]; do
                i=$((i + 1)); echo "Downloading $arg part $i ($((i * 64)) kB, 1.2 MB/s)"; sleep 0.05
            done ;;
    esac
done
for arg; do
    case "$arg" in
        dcs-test-broken*) echo "ERROR: No matching distribution found for $arg" >&2; exit 1 ;;
        dcs-test-colour*)
            printf '\033[33mCollecting %s\033[0m\r\033[K\n' "$arg"
            printf '\033[1;31mERROR: No matching distribution found for %s\033[0m\n' "$arg" >&2; exit 1 ;;
    esac
done
exit 0
"""

APK_BASE_WORLD = "alpine-baselayout\napk-tools\nbusybox\nmusl\n"

APK = r"""#!/bin/sh
# dcs-test stub of apk: the installed packages are the names in /etc/apk/world
echo "$*" >> /var/log/dcs-apk.log
command=""
packages=""
skip=""
for arg; do
    if [ -n "$skip" ]; then skip=""; continue; fi
    case "$arg" in
        -X|--repository|-p|--root|--arch|--cache-dir|--keys-dir|--repositories-file) skip=1 ;;
        -*) ;;
        *) if [ -z "$command" ]; then command="$arg"; else packages="$packages $arg"; fi ;;
    esac
done
case "$command" in
    add)
        missing=""
        for package in $packages; do
            case "$package" in dcs-test-missing*) missing="$missing ${package%%[=<>~]*}" ;; esac
        done
        if [ -n "$missing" ]; then
            echo "ERROR: unable to select packages:" >&2
            for name in $missing; do
                echo "  $name (no such package):" >&2
                echo "    required by: world[$name]" >&2
            done
            exit 1
        fi
        for package in $packages; do
            name="${package%%[=<>~]*}"
            grep -qx "$name" /etc/apk/world || echo "$name" >> /etc/apk/world
            : > "/var/lib/dcs-apk/$name"
        done
        echo "OK: 0 MiB in $(wc -l < /etc/apk/world) packages"
        ;;
    del)
        for package in $packages; do
            grep -vx "$package" /etc/apk/world > /etc/apk/world.new; mv /etc/apk/world.new /etc/apk/world
            rm -f "/var/lib/dcs-apk/$package"
        done
        ;;
    info) sort /etc/apk/world ;;
esac
exit 0
"""

RSCRIPT = r"""#!/bin/sh
# dcs-test stub of Rscript and R: logs its arguments; understands install.packages(...) and library(...)
lib=/usr/local/lib/R/site-library
{ echo "--- $(basename "$0")"; for arg; do printf '%s\n' "$arg"; done; } >> /var/log/dcs-r.log
case "$1" in --version) echo "Rscript (R) version 4.3.2 (2023-10-31)"; exit 0 ;; esac
code=""
previous=""
for arg; do
    if [ "$previous" = "-e" ]; then code="$code$arg;"; fi
    previous="$arg"
done
case "$code" in
    *install.packages\(*)
        repos=$(printf '%s' "$code" | sed -n "s/.*repos *= *[\"']\([^\"']*\)[\"'].*/\1/p")
        names=$(printf '%s' "$code" | sed -e 's/.*install\.packages(//' -e 's/repos *=.*//' -e 's/).*//' \
            | grep -o "[\"'][A-Za-z0-9._-]*[\"']" | tr -d "\"'")
        echo "repos=$repos packages=$(echo $names)" >> /var/log/dcs-r-installs.log
        for name in $names; do
            case "$name" in
                dcs-test-missing*)
                    printf 'Warning message:\npackage \342\200\230%s\342\200\231 %s\n' "$name" \
                        "is not available for this version of R" >&2 ;;
                *)
                    mkdir -p "$lib/$name"
                    printf 'Package: %s\nVersion: 1.0.0\nRepository: %s\n' "$name" "$repos" \
                        > "$lib/$name/DESCRIPTION" ;;
            esac
        done
        ;;
esac
for name in $(printf '%s' "$code" | grep -o 'library([^)]*)' | sed -e 's/library(//' -e 's/)//' | tr -d "\"'"); do
    if [ ! -d "$lib/$name" ]; then
        printf 'Error in library(%s) : there is no package called \342\200\230%s\342\200\231\nExecution halted\n' \
            "$name" "$name" >&2
        exit 1
    fi
done
exit 0
"""
