"""What users ask to install: pip requirements (PEP 508), apt packages (Debian policy), image variables."""

from __future__ import annotations

import pytest

from bot.domain.packages import split_requirements, validate_apt, validate_env, validate_pip
from bot.errors import InvalidInput

PIP_FIX_PLAIN = "Give a plain requirement like 'pandas>=2,<3'"
PIP_FIX_PEP508 = "Write it as name[extras]<op>version"
PIP_FIX_OPTION = "Options such as --index-url or -r are not allowed"
PIP_FIX_SCHEME = "Only https:// (or git+https://) URLs are allowed"
PIP_FIX_CREDENTIALS = "Never put credentials in a requirement"
APT_FIX = "Use a Debian package name (lowercase letters, digits, '+', '-', '.'; at least two characters)"


# ---------------------------------------------------------------- pip


@pytest.mark.parametrize(
    ("entry", "canonical"),
    [
        ("pandas", "pandas"),
        ("pandas==2.2.2", "pandas==2.2.2"),
        ("Pandas==2.2.2", "Pandas==2.2.2"),
        ("scikit-learn==1.5.1", "scikit-learn==1.5.1"),
        ("scikit_learn==1.5.1", "scikit_learn==1.5.1"),
        ("zope.interface>=6", "zope.interface>=6"),
        ("  pandas==2.2.2  ", "pandas==2.2.2"),
        ("pandas\n", "pandas"),
        # extras are sorted
        ("requests[socks]>=2.31", "requests[socks]>=2.31"),
        ("requests[socks,security]>=2.31", "requests[security,socks]>=2.31"),
        ("requests[ socks ]", "requests[socks]"),
        # version ranges with commas, spaces removed, specifiers in a stable order
        ("pandas>=2,<3", "pandas<3,>=2"),
        ("pandas >= 2 , < 3", "pandas<3,>=2"),
        ("pandas ==2.2", "pandas==2.2"),
        ("numpy==1.26.*", "numpy==1.26.*"),
        ("pandas==2.*,>=2.1", "pandas==2.*,>=2.1"),
        ("numpy!=1.25.0", "numpy!=1.25.0"),
        ("numpy~=1.26", "numpy~=1.26"),
        ("numpy>1,!=1.5,<2", "numpy!=1.5,<2,>1"),
        ("pandas===2.2.2", "pandas===2.2.2"),
        ("torch==2.3.0+cpu", "torch==2.3.0+cpu"),
        # https direct references
        ("pkg @ https://example.com/pkg-1.0-py3-none-any.whl", "pkg @ https://example.com/pkg-1.0-py3-none-any.whl"),
        ("pkg@https://example.com/pkg.whl", "pkg @ https://example.com/pkg.whl"),
        ("pkg @ https://example.com:8443/simple/pkg.tar.gz", "pkg @ https://example.com:8443/simple/pkg.tar.gz"),
        ("pkg @ git+https://github.com/org/pkg.git", "pkg @ git+https://github.com/org/pkg.git"),
        # a git ref after the path is how teams pin git dependencies
        ("pkg @ git+https://github.com/org/pkg.git@v1.0", "pkg @ git+https://github.com/org/pkg.git@v1.0"),
        ("pkg[extra] @ https://example.com/p.whl", "pkg[extra] @ https://example.com/p.whl"),
        # PEP 508 environment markers (they reach pip as a requirements file line, never a shell)
        ("pandas; python_version > '3.8'", 'pandas; python_version > "3.8"'),
        ("pandas;sys_platform=='linux'", 'pandas; sys_platform == "linux"'),
        ('numpy<2; python_version<"3.12"', 'numpy<2; python_version < "3.12"'),
        ("x; (os_name == 'posix') and extra == 'a'", 'x; os_name == "posix" and extra == "a"'),
    ],
)
def test_pip_accepts_pep508_and_returns_the_canonical_form(entry: str, canonical: str) -> None:
    assert validate_pip(entry) == canonical
    # canonical forms are stable
    assert validate_pip(canonical) == canonical


@pytest.mark.parametrize(
    ("entry", "reason", "fix"),
    [
        ("", "is empty", "Remove the empty entry."),
        ("   ", "is empty", "Remove the empty entry."),
        ("pandas\nnumpy", "contains characters that are not allowed ('\\n')", PIP_FIX_PLAIN),
        ("pandas\rnumpy", "contains characters that are not allowed ('\\r')", PIP_FIX_PLAIN),
        ("pandas\tnumpy", "contains characters that are not allowed ('\\t')", PIP_FIX_PLAIN),
        ("pandas; python_version > '3.8' && id", "contains characters that are not allowed ('&')", PIP_FIX_PLAIN),
        ("pandas; $(id)", "contains characters that are not allowed ('$')", PIP_FIX_PLAIN),
        ("pandas; os_name == `id`", "contains characters that are not allowed ('`')", PIP_FIX_PLAIN),
        ("pandas; os_name == 'a'; id", "contains characters that are not allowed (';')", PIP_FIX_PLAIN),
        ("pan'das; os_name == 'a'", 'contains characters that are not allowed ("\'")', PIP_FIX_PLAIN),
        ("pandas; nonsense > 1", "is not a valid PEP 508 requirement", PIP_FIX_PEP508),
        ("pandas && rm -rf /", "contains characters that are not allowed ('&')", PIP_FIX_PLAIN),
        ("pandas&&id", "contains characters that are not allowed ('&')", PIP_FIX_PLAIN),
        ("pandas | sh", "contains characters that are not allowed ('|')", PIP_FIX_PLAIN),
        ("`id`", "contains characters that are not allowed ('`')", PIP_FIX_PLAIN),
        ("pandas==`id`", "contains characters that are not allowed ('`')", PIP_FIX_PLAIN),
        ("$(id)", "contains characters that are not allowed ('$' '(' ')')", PIP_FIX_PLAIN),
        ("pandas$HOME", "contains characters that are not allowed ('$')", PIP_FIX_PLAIN),
        ("'pandas'", 'contains characters that are not allowed ("\'")', PIP_FIX_PLAIN),
        ('"pandas"', "contains characters that are not allowed ('\"')", PIP_FIX_PLAIN),
        ("pandas\\", "contains characters that are not allowed ('\\\\')", PIP_FIX_PLAIN),
        ("pandas # comment", "contains characters that are not allowed ('#')", PIP_FIX_PLAIN),
        ("pandas{x}", "contains characters that are not allowed ('{' '}')", PIP_FIX_PLAIN),
        ("pandäs", "contains characters that are not allowed ('ä')", PIP_FIX_PLAIN),
        ("pandas\x00", "contains characters that are not allowed ('\\x00')", PIP_FIX_PLAIN),
        ("--index-url https://evil.example/simple", "is a pip option, not a requirement", PIP_FIX_OPTION),
        ("--extra-index-url=https://evil.example/simple", "is a pip option, not a requirement", PIP_FIX_OPTION),
        ("-i https://evil.example/simple", "is a pip option, not a requirement", PIP_FIX_OPTION),
        ("-r requirements.txt", "is a pip option, not a requirement", PIP_FIX_OPTION),
        ("-e .", "is a pip option, not a requirement", PIP_FIX_OPTION),
        ("-e git+https://github.com/org/pkg.git", "is a pip option, not a requirement", PIP_FIX_OPTION),
        ("--trusted-host evil.example", "is a pip option, not a requirement", PIP_FIX_OPTION),
        ("--pre", "is a pip option, not a requirement", PIP_FIX_OPTION),
        ("pandas --index-url https://evil.example", "is not a valid PEP 508 requirement", PIP_FIX_PEP508),
        ("==2.2", "is not a valid PEP 508 requirement", PIP_FIX_PEP508),
        ("pandas>2 <3", "is not a valid PEP 508 requirement", PIP_FIX_PEP508),
        ("pandas==2.2 extra", "is not a valid PEP 508 requirement", PIP_FIX_PEP508),
        ("rm -rf /", "is not a valid PEP 508 requirement", PIP_FIX_PEP508),
        ("pkg @ https://user:pw@example.com/p.whl", "carries credentials in its URL", PIP_FIX_CREDENTIALS),
        ("pkg @ https://token@example.com/p.whl", "carries credentials in its URL", PIP_FIX_CREDENTIALS),
        ("pkg @ git+https://user:ghp_x@github.com/org/pkg.git", "carries credentials in its URL", PIP_FIX_CREDENTIALS),
        ("pkg @ http://example.com/p.whl", "uses a http URL", PIP_FIX_SCHEME),
        ("pkg @ file:///tmp/p.whl", "uses a file URL", PIP_FIX_SCHEME),
        ("pkg @ ftp://example.com/p.whl", "uses a ftp URL", PIP_FIX_SCHEME),
        ("pkg @ git+ssh://git@github.com/org/pkg.git", "uses a git+ssh URL", PIP_FIX_SCHEME),
        ("pkg @ git+http://github.com/org/pkg.git", "uses a git+http URL", PIP_FIX_SCHEME),
        ("pkg @ https://example.com/p.whl?token=x", "contains characters that are not allowed ('?')", PIP_FIX_PLAIN),
        ("pkg @ https://example.com/p.whl#sha256=0", "contains characters that are not allowed ('#')", PIP_FIX_PLAIN),
        ("pyspark", "is provided by Databricks at cluster start", "Remove it: Databricks injects pyspark"),
        ("PySpark==3.5.0", "is provided by Databricks at cluster start", "Remove it: Databricks injects pyspark"),
        ("PYSPARK>=3", "is provided by Databricks at cluster start", "Remove it: Databricks injects pyspark"),
    ],
)
def test_pip_rejections_name_field_value_and_fix(entry: str, reason: str, fix: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_pip(entry, "image[team-pandas].pip")
    error = caught.value
    assert error.field == "image[team-pandas].pip"
    assert error.value == entry
    assert error.reason.startswith(reason)
    assert error.fix.startswith(fix)
    assert str(error).startswith(f"image[team-pandas].pip: {repr(entry)[:100]}")
    assert fix in str(error)


def test_pip_credentials_never_echoed_beyond_the_value_the_user_typed() -> None:
    # The error quotes the user's own entry (so they can find it) but the fix text adds nothing secret.
    with pytest.raises(InvalidInput) as caught:
        validate_pip("pkg @ https://user:hunter2@example.com/p.whl")
    assert "hunter2" not in caught.value.fix
    assert "hunter2" not in caught.value.reason


@pytest.mark.parametrize("value", [None, 5, ["pandas"]])
def test_pip_rejects_values_that_are_not_text(value: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_pip(value)  # type: ignore[arg-type]
    assert caught.value.field == "pip"
    assert caught.value.reason == "is not text"
    assert "pandas==2.2.2" in caught.value.fix


# ---------------------------------------------------------------- apt


@pytest.mark.parametrize(
    ("entry", "safe"),
    [
        ("libgomp1", "libgomp1"),
        ("curl", "curl"),
        ("g++", "g++"),
        ("libstdc++6", "libstdc++6"),
        ("python3.11", "python3.11"),
        ("openjdk-17-jdk-headless", "openjdk-17-jdk-headless"),
        ("r-base-core", "r-base-core"),
        ("ab", "ab"),
        ("  curl  ", "curl"),
        ("curl=7.81.0-1ubuntu1.16", "curl=7.81.0-1ubuntu1.16"),
        ("tzdata=2024a-0ubuntu0.22.04", "tzdata=2024a-0ubuntu0.22.04"),
        ("libc6=2.35-0ubuntu3.8", "libc6=2.35-0ubuntu3.8"),
        ("openssh-server=1:8.9p1-3ubuntu0.10", "openssh-server=1:8.9p1-3ubuntu0.10"),
        ("foo=1.0~rc1", "foo=1.0~rc1"),
        ("foo=1.0+dfsg", "foo=1.0+dfsg"),
        ("libc6:amd64", "libc6:amd64"),
        ("libc6:i386", "libc6:i386"),
        ("libc6:amd64=2.35-0ubuntu3", "libc6:amd64=2.35-0ubuntu3"),
        ("libfoo:linux-any", "libfoo:linux-any"),
    ],
)
def test_apt_accepts_debian_names_versions_and_arch(entry: str, safe: str) -> None:
    assert validate_apt(entry) == safe


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("", "is not a valid Debian package name"),
        ("a", "is not a valid Debian package name"),
        ("Curl", "is not a valid Debian package name"),
        ("CURL", "is not a valid Debian package name"),
        ("-curl", "is not a valid Debian package name"),
        ("+curl", "is not a valid Debian package name"),
        (".curl", "is not a valid Debian package name"),
        ("lib_foo", "is not a valid Debian package name"),
        ("curl rm", "is not a valid Debian package name"),
        ("curl;rm", "is not a valid Debian package name"),
        ("curl && id", "is not a valid Debian package name"),
        ("curl|sh", "is not a valid Debian package name"),
        ("$(id)", "is not a valid Debian package name"),
        ("`id`", "is not a valid Debian package name"),
        ("curl'", "is not a valid Debian package name"),
        ('curl"', "is not a valid Debian package name"),
        ("curl\\", "is not a valid Debian package name"),
        ("curl\nid", "is not a valid Debian package name"),
        ("curl\n=1.0", "is not a valid Debian package name"),
        ("cürl", "is not a valid Debian package name"),
        ("curl/jammy", "is not a valid Debian package name"),
        ("curl*", "is not a valid Debian package name"),
        ("-y", "is not a valid Debian package name"),
        ("--allow-unauthenticated", "is not a valid Debian package name"),
        ("curl:", "has an invalid architecture qualifier"),
        ("curl:AMD64", "has an invalid architecture qualifier"),
        ("curl:amd64:i386", "has an invalid architecture qualifier"),
        ("curl:amd64\n=1.0", "has an invalid architecture qualifier"),
        ("curl:$(id)", "has an invalid architecture qualifier"),
        ("curl=", "has an invalid version"),
        ("curl==1.0", "has an invalid version"),
        ("curl=abc", "has an invalid version"),
        ("curl=1:", "has an invalid version"),
        ("curl=1.0=2", "has an invalid version"),
        ("curl=1.0 x", "has an invalid version"),
        ("curl=1.0;id", "has an invalid version"),
        ("curl=1.0$(id)", "has an invalid version"),
        ("curl=1.0`id`", "has an invalid version"),
        ("curl=1.0\nRUN id", "has an invalid version"),
        ("curl=1.0*", "has an invalid version"),
    ],
)
def test_apt_rejections_name_field_value_and_fix(entry: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_apt(entry, "image[team-r].apt")
    error = caught.value
    assert error.field == "image[team-r].apt"
    assert error.value == entry
    assert error.reason == reason
    assert error.fix.startswith(APT_FIX)
    assert "'libgomp1'" in error.fix
    assert str(error).startswith(f"image[team-r].apt: {entry!r} {reason}.")


@pytest.mark.parametrize("value", [None, 1, ["curl"]])
def test_apt_rejects_values_that_are_not_text(value: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_apt(value)  # type: ignore[arg-type]
    assert caught.value.field == "apt"
    assert caught.value.reason == "is not text"


# ---------------------------------------------------------------- env


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("TZ", "UTC"),
        ("LANG", "C.UTF-8"),
        ("_PRIVATE_FLAG", "1"),
        ("lower_case", "ok"),
        ("X1", ""),
        ("SPARK_OPTS", "a b c"),
        ("QUOTE", "it's fine"),
        ("SHELLISH", "a && b ; c | d"),
        ("UNICODE", "ünïcode ✓"),
        ("K" * 128, "v"),
        ("LONG", "v" * 1024),
    ],
)
def test_env_accepts(key: str, value: str) -> None:
    assert validate_env(key, value) == (key, value)


@pytest.mark.parametrize(
    ("key", "value", "field", "reason", "fix"),
    [
        ("1X", "v", "env.1X", "is not a valid variable name", "Use letters, digits and underscores"),
        ("X-Y", "v", "env.X-Y", "is not a valid variable name", "Use letters, digits and underscores"),
        ("X Y", "v", "env.X Y", "is not a valid variable name", "Use letters, digits and underscores"),
        ("", "v", "env.", "is not a valid variable name", "Use letters, digits and underscores"),
        ("X=Y", "v", "env.X=Y", "is not a valid variable name", "Use letters, digits and underscores"),
        ("TZ\n", "UTC", "env.TZ\n", "is not a valid variable name", "Use letters, digits and underscores"),
        ("K" * 129, "v", "env." + "K" * 129, "is not a valid variable name", "Use letters, digits and underscores"),
        ("ÜBER", "v", "env.ÜBER", "is not a valid variable name", "Use letters, digits and underscores"),
        # secret-looking names
        ("DB_PASSWORD", "x", "env.DB_PASSWORD", "looks like a secret", "spark_env_vars with {{secrets/scope/key}}"),
        ("db_passwd", "x", "env.db_passwd", "looks like a secret", "spark_env_vars with {{secrets/scope/key}}"),
        ("CLIENT_SECRET", "x", "env.CLIENT_SECRET", "looks like a secret", "spark_env_vars with {{secrets/"),
        ("GITHUB_TOKEN", "x", "env.GITHUB_TOKEN", "looks like a secret", "spark_env_vars with {{secrets/"),
        ("GOOGLE_CREDENTIALS", "x", "env.GOOGLE_CREDENTIALS", "looks like a secret", "spark_env_vars with {{sec"),
        ("SSH_PRIVATE_KEY", "x", "env.SSH_PRIVATE_KEY", "looks like a secret", "spark_env_vars with {{secrets/"),
        ("OPENAI_API_KEY", "x", "env.OPENAI_API_KEY", "looks like a secret", "spark_env_vars with {{secrets/"),
        ("AWS_ACCESS_KEY_ID", "x", "env.AWS_ACCESS_KEY_ID", "looks like a secret", "spark_env_vars with {{secr"),
        ("AWS_SECRET_ACCESS_KEY", "x", "env.AWS_SECRET_ACCESS_KEY", "looks like a secret", "spark_env_vars with"),
        # reserved by the base or Databricks
        ("PATH", "/x", "env.PATH", "is set by the base image or by Databricks", "Remove it"),
        ("HOME", "/x", "env.HOME", "is set by the base image or by Databricks", "Remove it"),
        ("JAVA_HOME", "/x", "env.JAVA_HOME", "is set by the base image or by Databricks", "Remove it"),
        ("PYSPARK_PYTHON", "/x", "env.PYSPARK_PYTHON", "is set by the base image or by Databricks", "Remove it"),
        (
            "DATABRICKS_RUNTIME_VERSION",
            "15.4",
            "env.DATABRICKS_RUNTIME_VERSION",
            "is set by the base image",
            "Remove it",
        ),
        # values
        ("X", 'a"b', "env.X", "contains characters that are not allowed ('\"')", "Use a value without quotes"),
        ("X", "a\\b", "env.X", "contains characters that are not allowed ('\\\\')", "Use a value without quotes"),
        ("X", "$HOME", "env.X", "contains characters that are not allowed ('$')", "Use a value without quotes"),
        ("X", "${HOME}", "env.X", "contains characters that are not allowed ('$')", "Use a value without quotes"),
        ("X", "`id`", "env.X", "contains characters that are not allowed ('`')", "Use a value without quotes"),
        ("X", "a\nLABEL x=y", "env.X", "contains characters that are not allowed ('\\n')", "Use a value without"),
        ("X", "a\rb", "env.X", "contains characters that are not allowed ('\\r')", "Use a value without quotes"),
        ("X", "a\tb", "env.X", "contains characters that are not allowed ('\\t')", "Use a value without quotes"),
        ("X", "a\x00b", "env.X", "contains characters that are not allowed ('\\x00')", "Use a value without"),
        ("X", "a\x7fb", "env.X", "contains characters that are not allowed ('\\x7f')", "Use a value without"),
        ("X", "v" * 1025, "env.X", "is longer than 1024 characters", "Shorten the value."),
        ("X", 1, "env.X", "is not text", 'Quote the value, e.g. TZ = "UTC".'),
        ("X", None, "env.X", "is not text", 'Quote the value, e.g. TZ = "UTC".'),
    ],
)
def test_env_rejections_name_field_value_and_fix(key: str, value: object, field: str, reason: str, fix: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_env(key, value)  # type: ignore[arg-type]
    error = caught.value
    assert error.field == field
    assert error.reason.startswith(reason)
    assert fix in error.fix
    assert str(error).startswith(f"{field}: ")
    assert repr(error.value)[:60] in str(error)


def test_env_secret_name_error_never_quotes_the_value() -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_env("DB_PASSWORD", "hunter2-very-secret")
    assert "hunter2" not in str(caught.value)
    assert caught.value.value == "DB_PASSWORD"


def test_env_field_prefix_names_the_catalog_entry() -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_env("1X", "v", "image[team-pandas].env")
    assert caught.value.field == "image[team-pandas].env.1X"


# ---------------------------------------------------------------- split_requirements


@pytest.mark.parametrize(
    ("text", "items"),
    [
        ("", []),
        ("  \n  ", []),
        ("pandas", ["pandas"]),
        ("pandas, numpy", ["pandas", "numpy"]),
        ("pandas\nnumpy\n", ["pandas", "numpy"]),
        ("pandas>=2,<3", ["pandas>=2,<3"]),
        ("pandas>=2, <3, numpy", ["pandas>=2,<3", "numpy"]),
        ("pandas>=2,<3,!=2.1.0,numpy~=1.26", ["pandas>=2,<3,!=2.1.0", "numpy~=1.26"]),
        ("x==1,==1.5", ["x==1,==1.5"]),
        ("pandas~=2.0,numpy", ["pandas~=2.0", "numpy"]),
        ("a,,b", ["a", "b"]),
        ("a\n>=2", ["a", ">=2"]),  # a line never continues the previous line's requirement
        # commas inside extras belong to the requirement
        ("requests[socks,security]>=2", ["requests[socks,security]>=2"]),
        ("requests[socks, security]>=2,<3, pandas", ["requests[socks,security]>=2,<3", "pandas"]),
    ],
)
def test_split_requirements(text: str, items: list[str]) -> None:
    assert split_requirements(text) == items
