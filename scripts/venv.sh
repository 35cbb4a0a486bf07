# Sourced by scripts/bot and scripts/dcs: a project venv in .venv (or $DCS_VENV) with dcs-bot installed.
#
# Debian's python3 is "externally managed" (PEP 668): `pip install` outside a venv is refused. A venv needs
# Debian's python3-venv package, which this installs with apt-get when it is missing and we are root.
# The project is (re)installed only when pyproject.toml changed since the last install.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DCS_VENV:-$REPO/.venv}"

venv_say() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; }

ensure_venv() {
    local py=${PYTHON:-python3} stamp
    command -v "$py" >/dev/null || { venv_say "error: $py not found (need Python >= 3.11)"; exit 1; }
    "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || { venv_say "error: $("$py" --version 2>&1); dcs-bot needs Python >= 3.11"; exit 1; }
    if [[ ! -x $VENV/bin/python ]]; then
        venv_say "creating $VENV…"
        if ! "$py" -m venv "$VENV" 2>/dev/null; then
            rm -rf "$VENV"
            if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
                venv_say "installing python3-venv (Debian)…"
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null \
                    || { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; }
                "$py" -m venv "$VENV"
            else
                venv_say "error: cannot create a venv; install python3-venv (sudo apt-get install python3-venv)"
                exit 1
            fi
        fi
    fi
    stamp="$(sha256sum "$REPO/pyproject.toml" | cut -d' ' -f1)"
    if [[ ! -f $VENV/.dcs-installed || $(cat "$VENV/.dcs-installed") != "$stamp" ]]; then
        venv_say "installing dcs-bot into $VENV…"
        PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/python" -m pip install -q -e "$REPO"
        echo "$stamp" >"$VENV/.dcs-installed"
    fi
}
