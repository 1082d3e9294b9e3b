"""Check that requirements/lock.txt agrees with pyproject.toml; print ONE line and exit 1 if not.

    python tools/check_lock.py              # before `make setup` installs the lock
    python tools/check_lock.py --installed  # after: the running interpreter holds exactly the lock
    python tools/check_lock.py --entry uv   # print the lock's uv pin with its hashes (one line)

Agreement means: every requirement of pyproject.toml (its dependencies, the extras `make setup`
installs, the build-system requires) has, on each platform the lock serves (Linux x86_64 and
aarch64, CPython 3.11, 3.12 and 3.13), a lock entry whose markers apply there and whose version
satisfies the requirement's specifier; and every lock entry is an `==` pin with hashes.

Standard library only, plus the `packaging` that pip vendors (every venv has pip), so it runs
before anything is installed.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

try:
    from pip._vendor.packaging.markers import Marker
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.utils import canonicalize_name
    from pip._vendor.packaging.version import Version
except ImportError:  # pragma: no cover - an interpreter without pip
    from packaging.markers import Marker
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
LOCK_NAME = "requirements/lock.txt"
LOCK = ROOT / LOCK_NAME
PYPROJECT = ROOT / "pyproject.toml"
BUILD_IN = ROOT / "requirements" / "build.in"
EXTRAS = ("test", "dev")  # the extras `make setup` installs (Makefile: `make lock` compiles them)
MACHINES = ("x86_64", "aarch64")
PYTHONS = ("3.11", "3.12", "3.13")

_PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)\s*(?:;(?P<marker>.*))?$")


class LockError(Exception):
    """One disagreement, worded as the single line `make setup` prints."""


def environments():
    """Marker environments of the platforms the lock serves."""
    for machine in MACHINES:
        for python in PYTHONS:
            yield {
                "implementation_name": "cpython",
                "implementation_version": python + ".0",
                "os_name": "posix",
                "platform_machine": machine,
                "platform_python_implementation": "CPython",
                "platform_release": "",
                "platform_system": "Linux",
                "platform_version": "",
                "python_full_version": python + ".0",
                "python_version": python,
                "sys_platform": "linux",
                "extra": "",
            }


def where(env) -> str:
    return f"Linux {env['platform_machine']} Python {env['python_version']}"


def parse_lock(text: str):
    """[(name, version, Marker | None, [--hash=...])] from a pip requirements file with hashes."""
    logical, current = [], ""
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    if current.strip():
        logical.append(current)
    entries = []
    for line in logical:
        head, *options = re.split(r"\s+(?=--)", line.strip())
        if head.startswith("-"):
            raise LockError(f"{LOCK_NAME}: unexpected option {head!r}: the lock holds only pins")
        match = _PIN.match(head.strip())
        if not match:
            raise LockError(f"{LOCK_NAME}: {head.strip()!r} is not a `name==version` pin")
        hashes = [o for o in options if o.startswith("--hash=")]
        name = canonicalize_name(match["name"])
        if not hashes:
            raise LockError(f"{LOCK_NAME}: {name}=={match['version']} has no --hash")
        marker = Marker(match["marker"]) if match["marker"] and match["marker"].strip() else None
        entries.append((name, match["version"], marker, hashes))
    return entries


def project_requirements(pyproject: dict, build_in: str | None = None):
    """(origin, Requirement) for everything `make setup` installs from pyproject.toml."""
    project = pyproject["project"]
    reqs = [("dependencies", r) for r in project.get("dependencies", [])]
    optional = project.get("optional-dependencies", {})
    for extra in EXTRAS:
        if extra not in optional:
            raise LockError(f"pyproject.toml: no extra {extra!r}, which `make setup` installs")
        reqs += [(f"extra {extra}", r) for r in optional[extra]]
    reqs += [("build-system", r) for r in pyproject.get("build-system", {}).get("requires", [])]
    if build_in:
        reqs += [("requirements/build.in", line.split("#")[0].strip())
                 for line in build_in.splitlines() if line.split("#")[0].strip()]
    return [(origin, Requirement(r)) for origin, r in reqs]


def applies(marker, env) -> bool:
    return marker is None or marker.evaluate(env)


def check(pyproject: dict, lock_text: str, build_in: str | None = None) -> None:
    """Raise LockError naming the first requirement the lock does not satisfy."""
    entries = parse_lock(lock_text)
    seen = {}
    for name, version, marker, _ in entries:
        for env in environments():
            if applies(marker, env):
                if (name, env["platform_machine"], env["python_version"]) in seen:
                    raise LockError(f"{LOCK_NAME}: {name} is pinned twice for {where(env)}")
                seen[(name, env["platform_machine"], env["python_version"])] = version
    for origin, req in project_requirements(pyproject, build_in):
        name = canonicalize_name(req.name)
        for env in environments():
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            version = seen.get((name, env["platform_machine"], env["python_version"]))
            if version is None:
                raise LockError(
                    f"{LOCK_NAME}: {name} ({origin} of pyproject.toml: {req}) is not locked for "
                    f"{where(env)}; run `make lock`")
            if not req.specifier.contains(Version(version), prereleases=True):
                raise LockError(
                    f"{LOCK_NAME}: {name}=={version} does not satisfy {req} ({origin} of "
                    f"pyproject.toml); run `make lock`")


def check_installed(lock_text: str) -> None:
    """Raise LockError unless this interpreter's distributions are exactly the lock's pins."""
    from importlib import metadata

    env = _running_env()
    wanted = {name: version for name, version, marker, _ in parse_lock(lock_text)
              if applies(marker, env)}
    have = {}
    for dist in metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"] or "")
        if name and name != "rnnlab":
            have[name] = dist.version
    for name, version in sorted(wanted.items()):
        if name not in have:
            raise LockError(f"{name}=={version} of {LOCK_NAME} is not installed")
        if Version(have[name]) != Version(version):
            raise LockError(f"{name} is {have[name]} here, {LOCK_NAME} pins {version}")
    extra = sorted(set(have) - set(wanted))
    if extra:
        raise LockError(f"{extra[0]}=={have[extra[0]]} is installed but not in {LOCK_NAME}"
                        + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else "")
                        + "; `make clean-venv setup` reinstalls exactly the lock")


def entry(lock_text: str, name: str) -> str:
    """NAME's pin that applies to this interpreter, as one requirements line with its hashes."""
    env = _running_env()
    for pinned, version, marker, hashes in parse_lock(lock_text):
        if pinned == canonicalize_name(name) and applies(marker, env):
            return " ".join([f"{pinned}=={version}", *hashes])
    raise LockError(f"{LOCK_NAME} has no pin of {name} for this interpreter")


def _running_env() -> dict:
    try:
        from pip._vendor.packaging.markers import default_environment
    except ImportError:  # pragma: no cover
        from packaging.markers import default_environment
    return {**default_environment(), "extra": ""}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--installed", action="store_true",
                        help="check the running interpreter's packages against the lock instead")
    parser.add_argument("--entry", metavar="NAME",
                        help="print NAME's pin for this interpreter with its hashes, and exit")
    args = parser.parse_args(argv)
    try:
        lock_text = LOCK.read_text(encoding="utf-8")
        if args.entry:
            print(entry(lock_text, args.entry))
        elif args.installed:
            check_installed(lock_text)
        else:
            pyproject = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
            build_in = BUILD_IN.read_text(encoding="utf-8") if BUILD_IN.exists() else None
            check(pyproject, lock_text, build_in)
    except LockError as err:
        print(f"check_lock: {err}", file=sys.stderr)
        return 1
    except (OSError, tomllib.TOMLDecodeError, ValueError) as err:
        print(f"check_lock: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
