"""Install once, ship once: the script the install stage runs around pip, and the final stage's one step.

The install stage (FROM the same base) snapshots the interpreter's install locations, runs pip with the build
settings, then `collect` copies only what pip added or changed into /dcs-ship (same paths, same metadata) and
lists what it removed (an upgraded package's old files). The final stage copies /dcs-ship over the base and
runs APPLY_SCRIPT, which deletes the removed paths and the list. So the pushed image holds the base's
environment once plus exactly the new files — not a second copy of the whole environment — and nothing of the
install stage's settings (pip.conf, CA, credentials) ever enters a layer of the final stage.

SHIP_SCRIPT runs inside the base with the base's own Python, which may be old (DBR 9.1 has 3.8): no
dependencies, nothing newer than Python 3.6.
"""

from __future__ import annotations

INSTALL_DIR = "/dcs-install"  # the install stage's build-context files (pip.conf, CA, requirements, this script)
SHIP_DIR = "/dcs-ship"  # what the final stage copies over /
REMOVED_LIST = "/.dcs-ship-removed.json"

SHIP_SCRIPT = r'''"""dcs-bot install stage: snapshot before pip, collect what pip changed (bot/domain/ship.py)."""
import json
import os
import shutil
import sys
import sysconfig

INSTALL = "/dcs-install"
SHIP = "/dcs-ship"
SNAPSHOT = INSTALL + "/snapshot.json"
REMOVED = "/.dcs-ship-removed.json"


def roots():
    found = {sys.prefix, sys.exec_prefix}
    paths = sysconfig.get_paths()
    for key in ("purelib", "platlib", "scripts", "data"):
        if key in paths:
            found.add(paths[key])
    found = sorted(p.rstrip("/") or "/" for p in found if os.path.isdir(p))
    kept = []
    for path in found:
        if not any(path == k or path.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(path)
    return kept


def record(path):
    st = os.lstat(path)
    target = os.readlink(path) if os.path.islink(path) else None
    return [st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, target]


def state():
    out = {}
    for root in roots():
        out[root] = record(root)
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                out[path] = record(path)
    return out


def ca_bundle():
    """The CA given to the build on top of the bundle pip already trusts (public indexes keep working)."""
    extra = INSTALL + "/ca.pem"
    if not os.path.exists(extra):
        return
    known = None
    try:
        from pip._vendor import certifi

        known = certifi.where()
    except Exception:
        for candidate in ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"):
            if os.path.exists(candidate):
                known = candidate
                break
    with open(INSTALL + "/ca-bundle.pem", "wb") as out:
        if known:
            with open(known, "rb") as handle:
                out.write(handle.read().rstrip(b"\n") + b"\n")
        with open(extra, "rb") as handle:
            out.write(handle.read())


def copy_metadata(real, dest):
    st = os.lstat(real)
    os.chown(dest, st.st_uid, st.st_gid, follow_symlinks=False)
    if not os.path.islink(dest):
        os.chmod(dest, st.st_mode & 0o7777)
    os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def collect():
    with open(SNAPSHOT) as handle:
        before = json.load(handle)
    after = state()
    changed = sorted(p for p, r in after.items() if before.get(p) != r)
    removed = sorted(p for p in before if p not in after)
    top = []
    for path in removed:
        if not top or not path.startswith(top[-1] + "/"):
            top.append(path)
    os.makedirs(SHIP, exist_ok=True)
    size = 0
    for path in changed:
        dest = SHIP + path
        parent = os.path.dirname(dest)
        if not os.path.isdir(parent):
            os.makedirs(parent)
        if os.path.islink(path):
            os.symlink(os.readlink(path), dest)
        elif os.path.isdir(path):
            os.makedirs(dest, exist_ok=True)
        else:
            shutil.copy2(path, dest)
            size += os.lstat(path).st_size
        copy_metadata(path, dest)
    # every directory of the tree carries its real counterpart's owner, mode and times (deepest first)
    for dirpath, _dirnames, _files in sorted(os.walk(SHIP), key=lambda w: -w[0].count("/")):
        real = dirpath[len(SHIP):] or "/"
        if os.path.isdir(real):
            copy_metadata(real, dirpath)
    with open(SHIP + REMOVED, "w") as handle:
        json.dump(top, handle)
    print("dcs-bot: shipping %d changed paths (%.1f MB), removing %d" % (len(changed), size / 1e6, len(top)))


def main():
    if sys.argv[1] == "snapshot":
        ca_bundle()
        with open(SNAPSHOT, "w") as handle:
            json.dump(state(), handle)
    elif sys.argv[1] == "collect":
        collect()


main()
'''

# Runs in the final stage with the base's Python: deletes what pip removed in the install stage, then the list.
APPLY_SCRIPT = (
    "import json,os,shutil;"
    f"p={REMOVED_LIST!r};"
    "r=json.load(open(p));"
    "[shutil.rmtree(x) if os.path.isdir(x) and not os.path.islink(x) else os.remove(x) "
    "for x in r if os.path.lexists(x)];"
    "os.remove(p)"
)
