"""Generate the Python gRPC stubs from proto/ into shared/, or check that the committed ones match.

    python scripts/gen_protos.py           # regenerate shared/confroute/v1/*_pb2*.py(i)
    python scripts/gen_protos.py --check   # exit 1 if the committed stubs differ from a fresh build

The proto folder mirrors the import path (proto/confroute/v1/x.proto -> confroute.v1.x_pb2), so the
stubs need no import rewriting. The output depends on the grpcio-tools version: pin it.
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from importlib import resources
from pathlib import Path

from grpc_tools import protoc  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
OUT_ROOT = ROOT / "shared"
STUB_PATTERNS = ("*_pb2.py", "*_pb2.pyi", "*_pb2_grpc.py")


def proto_files() -> list[Path]:
    """Every .proto under proto/, relative to proto/, in a stable order."""
    return sorted(p.relative_to(PROTO_ROOT) for p in PROTO_ROOT.rglob("*.proto"))


def generate(out_root: Path) -> None:
    """Run protoc (the one bundled with grpcio-tools) over every .proto, writing under out_root."""
    well_known = resources.files("grpc_tools") / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out_root}",
        f"--grpc_python_out={out_root}",
        f"--pyi_out={out_root}",
        *(str(p) for p in proto_files()),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed; see the messages above")


def stubs(out_root: Path) -> set[Path]:
    """Generated stub files under out_root, relative to it."""
    packages = {out_root / p.parent for p in proto_files()}
    return {f.relative_to(out_root) for d in packages for pat in STUB_PATTERNS for f in d.glob(pat)}


def differences(committed_root: Path, fresh_root: Path) -> list[str]:
    """Human-readable differences between committed stubs and a fresh build."""
    committed, fresh = stubs(committed_root), stubs(fresh_root)
    problems = [f"missing: {p}" for p in sorted(fresh - committed)]
    problems += [f"stale (no .proto generates it): {p}" for p in sorted(committed - fresh)]
    for rel in sorted(committed & fresh):
        if not filecmp.cmp(committed_root / rel, fresh_root / rel, shallow=False):
            problems.append(f"out of date: {rel}")
    return problems


def check() -> int:
    """Regenerate into a temporary folder and compare; 0 when the committed stubs are current."""
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        problems = differences(OUT_ROOT, Path(tmp))
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print("run: python scripts/gen_protos.py", file=sys.stderr)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    if parser.parse_args(argv).check:
        return check()
    generate(OUT_ROOT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
