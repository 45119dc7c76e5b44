"""Create the project's virtual environment: torch, Lava, lava-dl and spikecodec itself.

Usage (the Makefile's ``make setup`` calls this)::

    python3 tools/setup_env.py [--venv .venv] [--python python3.10] [--skip-verify]

Steps, each idempotent:

1. create the venv with the chosen interpreter (Python >= 3.10);
2. install ``requirements.txt`` (torch 2.14.1 and the real dependencies of lava-nc / lava-dl);
3. install ``requirements-lava.txt`` with ``--no-deps --ignore-requires-python`` because lava-nc
   0.10.0 and lava-dl 0.6.0 declare Python <3.11 and pin torch 2.3;
4. install tonic (``TONIC``, the N-MNIST reader) with ``--no-deps``: its declared pins would
   fight ours; what it needs at import time is in ``requirements.txt`` (so is librosa, which
   it declares too and which the roy-audio front end uses: installed in step 2);
5. install spikecodec itself in editable mode (``--no-deps``);
6. on Python >= 3.11 patch lava-nc's ``var_model.py`` (a dataclass with a mutable default,
   which 3.11 rejects) -- only where the file still has the old line;
7. verify: import lava, netx and slayer, and run a two-layer NetX network for 10 steps on
   ``Loihi2SimCfg(select_tag="fixed_pt")`` (tools/verify_lava.py).

It stops at the first failing step with the command that failed.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TONIC = "tonic==1.7.0"  # --no-deps; see step 4 of the module docstring
OLD_DEFAULT = re.compile(r"^(\s+\w+: ByteEncoder) = ByteEncoder\(\)\s*$", re.MULTILINE)


def run(cmd: list[str]) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_venv(venv: Path, python: str) -> None:
    if venv_python(venv).exists():
        return
    run([python, "-m", "venv", str(venv)])


def site_packages(py: Path) -> Path:
    out = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    )
    return Path(out.stdout.strip())


def patch_var_model(py: Path) -> str:
    """Make lava-nc's ``var_model.py`` importable on Python 3.11 (idempotent)."""
    version = subprocess.run(
        [str(py), "-c", "import sys; print(sys.version_info[:2] >= (3, 11))"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    if version != "True":
        return "not needed on this Python"
    path = site_packages(py) / "lava" / "magma" / "compiler" / "var_model.py"
    text = path.read_text()
    if not OLD_DEFAULT.search(text):
        return "already patched"
    text = OLD_DEFAULT.sub(r"\1 = field(default_factory=ByteEncoder)", text)
    text = text.replace(
        "from dataclasses import dataclass, InitVar",
        "from dataclasses import dataclass, InitVar, field",
        1,
    )
    tmp = path.with_suffix(".py.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return f"patched {path}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", default=str(ROOT / ".venv"))
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter for a new venv (>= 3.10)")
    parser.add_argument("--skip-verify", action="store_true")
    args = parser.parse_args(argv)

    venv = Path(args.venv)
    ensure_venv(venv, args.python)
    py = str(venv_python(venv))
    pip = [py, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    run(pip + ["-r", str(ROOT / "requirements.txt")])
    run(pip + ["--no-deps", "--ignore-requires-python", "-r", str(ROOT / "requirements-lava.txt")])
    run(pip + ["--no-deps", TONIC])
    run(pip + ["--no-deps", "-e", str(ROOT)])
    print("lava-nc var_model.py:", patch_var_model(Path(py)), flush=True)
    if not args.skip_verify:
        run([py, str(ROOT / "tools" / "verify_lava.py")])
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.CalledProcessError as err:
        print(f"setup failed at: {' '.join(map(str, err.cmd))}", file=sys.stderr)
        sys.exit(err.returncode or 1)
