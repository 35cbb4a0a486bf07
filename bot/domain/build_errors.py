"""What a failed build's log says, in the catalog's words: which field, which package, what to change.

pip and apt print the cause deep in a long log (`No matching distribution found for X`, `Unable to locate
package Y`, `CERTIFICATE_VERIFY_FAILED`); this finds it and names the catalog field and the settings to look
at. Pure: log lines in, one sentence (or None) out.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence

from bot.domain.packages import apt_name, pip_name

_NO_DISTRIBUTION = re.compile(r"No matching distribution found for (\S+)")
_APT_MISSING = re.compile(r"Unable to locate package ([a-z0-9][a-z0-9+.-]*)")
_APK_MISSING = re.compile(r"^\s*([a-z0-9][a-z0-9+._-]*) \(no such package\)", re.M)
_R_MISSING = re.compile(r"there is no package called \W?([A-Za-z][A-Za-z0-9.]*)")
_TLS = ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed", "SSLCertVerificationError")
_CONNECTION = (
    "ProxyError",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Connection refused",
    "Could not resolve",
    "407 Proxy Authentication Required",
    "Read timed out",
)
_AUTH = ("401 Client Error", "403 Client Error", "401 Unauthorized", "User for ")
SETTINGS = (
    "pip_index_url/ca_bundle/https_proxy in the catalog's [build] table or the image's build table, or "
    "DCS_PIP_INDEX_URL, DCS_PIP_CA_BUNDLE, DCS_BUILD_HTTPS_PROXY in the bot's environment; see the README, "
    '"Corporate networks"'
)


def explain_failure(
    log: Sequence[str], *, pip: Iterable[str] = (), apt: Iterable[str] = (), known: Iterable[str] = ()
) -> str | None:
    """One sentence naming the field, the package and the fix, or None when the log says nothing we know.

    `pip`/`apt` are the image's entries; `known` are package names the index is known to have (for "did you
    mean")."""
    text = "\n".join(log)
    pip_names = {pip_name(p): p for p in pip}
    apt_names = {apt_name(a): a for a in apt}
    if any(marker in text for marker in _TLS):
        return (
            "pip could not verify the package index's TLS certificate (CERTIFICATE_VERIFY_FAILED): the build "
            f"does not trust the CA of the index or of a TLS-intercepting proxy. Set ca_bundle to a PEM file with "
            f"that CA ({SETTINGS})."
        )
    missing = _NO_DISTRIBUTION.search(text)
    if missing:
        name = missing.group(1)
        entry = pip_names.get(_canonical(name), name)
        hint = _did_you_mean(_canonical(name), [*known, *pip_names])
        unreachable = any(marker in text for marker in (*_CONNECTION, *_AUTH))
        cause = (
            " The index could not be reached or refused the credentials on the way; check the build settings "
            f"({SETTINGS})."
            if unreachable
            else " Check the name and version against the index the build uses."
        )
        return f"pip: {entry!r} was not found (No matching distribution found for {name}).{hint}{cause}"
    apt_missing = _APT_MISSING.search(text)
    if apt_missing:
        name = apt_missing.group(1)
        entry = apt_names.get(name, name)
        hint = _did_you_mean(name, known)
        return (
            f"apt: {entry!r} is not a package of the base's apt sources (Unable to locate package {name}).{hint} "
            "Check the name for the base's distribution (e.g. `apt-cache search`), or set apt_mirror."
        )
    apk_missing = _APK_MISSING.search(text)
    if apk_missing:
        name = apk_missing.group(1)
        return (
            f"apk: {name!r} is not a package of the base's Alpine repositories (no such package)."
            f"{_did_you_mean(name, known)} Check the name for the base's Alpine release (pkgs.alpinelinux.org)."
        )
    r_missing = _R_MISSING.search(text)
    if r_missing:
        name = r_missing.group(1)
        return (
            f"r_packages: {name!r} could not be installed from the CRAN mirror (there is no package called {name!r})."
            " Check the name, and cran_mirror (DCS_CRAN_MIRROR) and the proxy settings."
        )
    if any(marker in text for marker in _CONNECTION):
        return f"The build could not reach a package index or mirror (connection failed). Check {SETTINGS}."
    if any(marker in text for marker in _AUTH):
        return (
            "The package index refused the build's credentials. Check pip_username and the DCS_SECRET_* variable "
            "pip_password_env names."
        )
    return None


def field_of(message: str) -> str | None:
    """The catalog field a hint is about ("pip", "apt"), for surfaces that point at fields."""
    for field in ("pip", "apt"):
        if message.startswith(f"{field}: "):
            return field
    return None


def _canonical(requirement: str) -> str:
    """The project of a requirement as pip prints it ("Pandas[x]>=2" -> "pandas")."""
    name = re.split(r"[\[<>=!~;@ (]", requirement, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def _did_you_mean(name: str, candidates: Iterable[str]) -> str:
    options = sorted({_canonical(c) for c in candidates} - {name})
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.75)
    return f" Did you mean {close[0]!r}?" if close else ""
