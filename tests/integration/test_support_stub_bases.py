"""Busybox stand-ins for what cannot run here: an Alpine-like base with `apk`, an R base with `Rscript`/`R`."""

from __future__ import annotations

from tests.support.images import run_shell

ALPINE = {"os_id": "alpine", "os_version": "3.19.1", "apt": False, "apk": True, "bash": False, "python": None}


def test_apk_records_its_argv_and_what_it_installed(engine, make_base):
    image = make_base("dcs-test/alpine-like:3.19", **ALPINE)

    result = run_shell(
        engine,
        image,
        "apk update && apk add --no-cache -X https://mirror.example/alpine/v3.19/main curl git=2.43.0-r0 && apk info"
        " && cat /var/log/dcs-apk.log && ls /var/lib/dcs-apk && which apt-get || echo no apt-get",
    )

    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        "OK: 0 MiB in 6 packages\n"
        "alpine-baselayout\napk-tools\nbusybox\ncurl\ngit\nmusl\n"
        "update\nadd --no-cache -X https://mirror.example/alpine/v3.19/main curl git=2.43.0-r0\ninfo\n"
        "curl\ngit\n"
        "no apt-get\n"
    )


def test_apk_fails_like_apk_for_a_missing_package_and_installs_nothing(engine, make_base):
    image = make_base("dcs-test/alpine-like:3.19", **ALPINE)

    result = run_shell(engine, image, "apk add curl dcs-test-missing; echo exit=$?; apk info | grep -c curl")

    assert result.stdout == "exit=1\n0\n"
    assert result.stderr == (
        "ERROR: unable to select packages:\n"
        "  dcs-test-missing (no such package):\n"
        "    required by: world[dcs-test-missing]\n"
    )


def test_rscript_records_packages_and_the_cran_mirror(engine, make_base):
    image = make_base("dcs-test/r-like:4.3", r=True)

    result = run_shell(
        engine,
        image,
        """Rscript -e "install.packages(c('data.table', 'jsonlite'), repos='https://cran.example.org/')" && """
        """R --vanilla -e 'install.packages("arrow", repos = "https://packagemanager.example/cran/latest")' && """
        "Rscript -e 'library(data.table)' && cat /var/log/dcs-r-installs.log && "
        "cat /usr/local/lib/R/site-library/arrow/DESCRIPTION && Rscript --version",
    )

    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        "repos=https://cran.example.org/ packages=data.table jsonlite\n"
        "repos=https://packagemanager.example/cran/latest packages=arrow\n"
        "Package: arrow\nVersion: 1.0.0\nRepository: https://packagemanager.example/cran/latest\n"
        "Rscript (R) version 4.3.2 (2023-10-31)\n"
    )


def test_r_warns_for_a_missing_package_and_library_then_fails(engine, make_base):
    image = make_base("dcs-test/r-like:4.3", r=True)

    result = run_shell(
        engine,
        image,
        """Rscript -e "install.packages('dcs-test-missing', repos='https://cran.example.org/')"; echo exit=$?; """
        "Rscript -e 'library(dcs-test-missing)'; echo exit=$?; grep -c -- '^--- Rscript$' /var/log/dcs-r.log",
    )

    assert result.stdout == "exit=0\nexit=1\n2\n"
    assert "package \u2018dcs-test-missing\u2019 is not available for this version of R" in result.stderr
    assert "there is no package called \u2018dcs-test-missing\u2019" in result.stderr


def test_new_stub_fields_leave_existing_bases_as_they_were(engine, make_base):
    default = make_base("dcs-test/stubs-default:1")

    result = run_shell(engine, default, "which apt-get; which apk Rscript R || echo none")

    assert result.stdout == "/usr/bin/apt-get\nnone\n"
