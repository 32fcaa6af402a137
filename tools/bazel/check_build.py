"""Checks that the Bazel build covers the source tree, so that BUILD files cannot drift from it.

The BUILD files, and the .bzl files of this workspace they load, are written in the part of Starlark
that Python also runs. This module executes them with Bazel's `glob` semantics (package boundaries,
`**`, excludes, .bazelignore) and records the rules they declare, then checks that:

- every test file (tests/**/test_*.py, tests/**/*_test.py) is run by exactly one py_test, through
  pytest (//tools/bazel:pytest_main.py with the file as its first argument);
- every Python file of scrabblegan_tf/, datasets/, export/, bench/, tests/ and the top level is in
  the srcs of a py_library, and every other file there (dummy_data/, fixtures, package data) is in
  the srcs or data of a target;
- every module there with a `__main__` guard (a CLI; dataset tooling and tests aside) is run by a
  py_binary;
- every py_test sees all of that, plus ../shared/data (@shared//:data_dir), in its runfiles;
- no such file name holds whitespace (Bazel 4's runfiles manifests cannot).

Files matching JUNK in tools/bazel/defs.bzl (byte code, caches) are never build inputs.
Usage: python tools/bazel/check_build.py [WORKSPACE_ROOT]    (exit status 1 when it finds problems)
Only the standard library: tests/test_bazel_build.py runs it under `make test` and `bazel test`.
"""

from __future__ import annotations

import builtins
import os
import re
import sys
import types
from dataclasses import dataclass, field

BUILD_FILE_NAMES = ("BUILD.bazel", "BUILD")
# Never walked: not part of any package, or huge.
SKIP_DIRS = {".git", ".venv", "node_modules"}
# Trees whose every file the build must cover ("" = the top-level files only).
COVERED_TREES = ("scrabblegan_tf", "datasets", "export", "bench", "tests")
# Trees where a `__main__` guard marks a CLI that needs a py_binary.
CLI_TREES = ("", "scrabblegan_tf", "export", "bench")
TEST_FILE_PATTERNS = ("**/test_*.py", "**/*_test.py")
PYTEST_MAIN = "tools/bazel/pytest_main.py"
SHARED_DATA = "@shared//:data_dir"
MAIN_GUARD = re.compile(r"""^if\s+__name__\s*==\s*["']__main__["']\s*:""", re.MULTILINE)
# Bazel 4.2's build-runfiles fails on "link or target filename contains space".
BAD_NAME = re.compile(r"\s")


class BuildError(Exception):
    """A BUILD or .bzl file that cannot be evaluated (or calls fail())."""


@dataclass
class Target:
    kind: str
    package: str
    name: str
    attrs: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"//{self.package}:{self.name}"


def _segment_regex(segment: str) -> re.Pattern:
    out = []
    for ch in segment:
        out.append("[^/]*" if ch == "*" else "[^/]" if ch == "?" else re.escape(ch))
    return re.compile("".join(out))


def glob_match(pattern: str, path: str) -> bool:
    """Whether the package-relative file `path` matches the Bazel glob `pattern`."""
    return _match(pattern.split("/"), path.split("/"))


def _match(segs: list[str], parts: list[str]) -> bool:
    # As in Bazel, segments before the last one match folders only, and `**` matches zero or more
    # folders (a trailing `**`: every file below).
    if not segs:
        return not parts
    if segs[0] == "**":
        if len(segs) == 1:
            return len(parts) >= 1
        return any(_match(segs[1:], parts[k:]) for k in range(len(parts)))
    if not parts or (len(segs) > 1 and len(parts) == 1):
        return False
    return bool(_segment_regex(segs[0]).fullmatch(parts[0])) and _match(segs[1:], parts[1:])


def _split_label(label: str, package: str) -> tuple[str, str, str]:
    """(repository, package, name) of `label` written in `package`; repository '' = this one."""
    repo = ""
    if label.startswith("@"):
        repo, _, label = label.partition("//")
        label = "//" + label
        if repo == "@":
            repo = ""
    if label.startswith("//"):
        pkg, _, name = label[2:].partition(":")
        if not name:
            name = pkg.rsplit("/", 1)[-1]
        return repo, pkg, name
    return repo, package, label[1:] if label.startswith(":") else label


class Workspace:
    """The packages and rules of a workspace, evaluated from its BUILD files."""

    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        self.ignored = self._read_bazelignore()
        self.targets: dict[str, Target] = {}
        self.problems: list[str] = []
        self.current_package = ""
        self._bzl_modules: dict[str, dict] = {}
        self.packages = self._find_packages()
        self.junk: list[str] = []
        for package in self.packages:
            self._evaluate_build(package)
        defs = self._bzl_modules.get("tools/bazel/defs.bzl")
        if defs is not None:
            self.junk = list(defs.get("JUNK", []))

    # -- files ------------------------------------------------------------------------------------
    def _read_bazelignore(self) -> list[str]:
        path = os.path.join(self.root, ".bazelignore")
        if not os.path.exists(path):
            return []
        with open(path, encoding="utf-8") as f:
            lines = [line.strip().strip("/") for line in f]
        return [line for line in lines if line and not line.startswith("#")]

    def is_ignored(self, rel: str) -> bool:
        return any(rel == p or rel.startswith(p + "/") for p in self.ignored)

    def _skip_dir(self, rel: str) -> bool:
        base = rel.rsplit("/", 1)[-1]
        if base in SKIP_DIRS or self.is_ignored(rel):
            return True
        # Bazel's convenience symlinks (bazel-bin, bazel-out, bazel-<workspace>, ...).
        return "/" not in rel and base.startswith("bazel-") and os.path.islink(self.abs(rel))

    def abs(self, rel: str) -> str:
        return os.path.join(self.root, rel) if rel else self.root

    def is_package(self, rel: str) -> bool:
        return any(os.path.isfile(os.path.join(self.abs(rel), n)) for n in BUILD_FILE_NAMES)

    def _find_packages(self) -> list[str]:
        packages = []
        for dirpath, dirnames, _ in os.walk(self.root):
            rel = os.path.relpath(dirpath, self.root).replace(os.sep, "/")
            rel = "" if rel == "." else rel
            dirnames[:] = sorted(d for d in dirnames if not self._skip_dir(f"{rel}/{d}" if rel else d))
            if self.is_package(rel):
                packages.append(rel)
        return packages

    def files(self, top: str, max_depth: int | None = None) -> list[str]:
        """Files under `top` (workspace-relative), not descending into ignored or skipped folders."""
        out = []
        base = self.abs(top)
        if not os.path.isdir(base):
            return out
        for dirpath, dirnames, filenames in os.walk(base, followlinks=True):
            rel = os.path.relpath(dirpath, self.root).replace(os.sep, "/")
            rel = "" if rel == "." else rel
            depth = 0 if rel == top else rel[len(top):].strip("/").count("/") + 1
            keep = []
            for d in sorted(dirnames):
                child = f"{rel}/{d}" if rel else d
                if not self._skip_dir(child) and (max_depth is None or depth + 1 < max_depth):
                    keep.append(d)
            dirnames[:] = keep
            out.extend(f"{rel}/{n}" if rel else n for n in sorted(filenames))
        return out

    def package_of(self, rel_file: str) -> str | None:
        """The package a workspace-relative file belongs to (None: ignored or in no package)."""
        d = rel_file.rsplit("/", 1)[0] if "/" in rel_file else ""
        while True:
            if self.is_ignored(d):
                return None
            if self.is_package(d):
                return d
            if not d:
                return None
            d = d.rsplit("/", 1)[0] if "/" in d else ""

    def glob(self, package: str, include, exclude=(), exclude_directories=1, allow_empty=True) -> list[str]:
        """Bazel's glob(): package-relative files, not crossing into subpackages or ignored folders."""
        del exclude_directories, allow_empty  # files only; empty globs are allowed in Bazel 4
        found = set()
        for pattern in include:
            segs = pattern.split("/")
            literal = []
            for s in segs[:-1]:
                if "*" in s or "?" in s:
                    break
                literal.append(s)
            top = "/".join(([package] if package else []) + literal)
            max_depth = None if "**" in segs else len(segs) - len(literal)
            for rel in self.files(top, max_depth):
                if self.package_of(rel) != package:
                    continue
                path = rel[len(package) + 1:] if package else rel
                if glob_match(pattern, path):
                    found.add(path)
        return sorted(p for p in found if not any(glob_match(x, p) for x in exclude))

    # -- evaluation -------------------------------------------------------------------------------
    def _record(self, kind: str):
        def rule(*args, **attrs):
            if kind == "exports_files":
                return None
            if kind in ("package", "licenses", "workspace", "register_toolchains"):
                return None
            if args:
                raise BuildError(f"{kind}() takes keyword arguments only (//{self.current_package})")
            name = attrs.get("name")
            if not isinstance(name, str):
                raise BuildError(f"{kind}() without a name in //{self.current_package}")
            target = Target(kind, self.current_package, name, attrs)
            if target.label in self.targets:
                self.problems.append(f"{target.label}: declared twice")
            self.targets[target.label] = target
            return None

        return rule

    def _builtins(self) -> dict:
        ws = self

        class Env(dict):
            def __missing__(self, key):  # every unknown name is a rule (native or loaded)
                if key.startswith("__"):
                    raise KeyError(key)
                return ws._record(key)

        def fail(msg="", *args, **kwargs):
            raise BuildError(f"fail() in //{ws.current_package}: {msg}")

        def select(*args, **kwargs):
            raise BuildError("select() is not supported by tools/bazel/check_build.py")

        env = Env(vars(builtins))
        env.update(
            glob=lambda include, exclude=(), exclude_directories=1, allow_empty=True: ws.glob(
                ws.current_package, include, exclude
            ),
            native=self._native(),
            fail=fail,
            select=select,
            load=self._load,
            struct=lambda **kw: types.SimpleNamespace(**kw),
            print=lambda *a, **k: None,
            Label=str,
        )
        return env

    def _native(self):
        ws = self

        class Native:
            def glob(self, include, exclude=(), exclude_directories=1, allow_empty=True):
                return ws.glob(ws.current_package, include, exclude)

            def package_name(self):
                return ws.current_package

            def repository_name(self):
                return "@"

            def existing_rules(self):
                return {t.name: dict(t.attrs, kind=t.kind) for t in ws.targets.values() if t.package == ws.current_package}

            def __getattr__(self, kind):
                if kind.startswith("__"):
                    raise AttributeError(kind)
                return ws._record(kind)

        return Native()

    def _exec(self, path: str, env: dict) -> dict:
        with open(path, encoding="utf-8") as f:
            source = f.read()
        try:
            code = compile(source, path, "exec")
        except SyntaxError as e:
            raise BuildError(f"{path}: not Python-compatible Starlark: {e}") from e
        scope = {"__builtins__": env}
        exec(code, scope)  # noqa: S102 - the workspace's own build files
        return scope

    def _load(self, label: str, *symbols, **aliases):
        frame = sys._getframe(1)
        scope = frame.f_globals
        repo, pkg, name = _split_label(label, scope.get("__package__") or self.current_package)
        if repo:
            module = None  # another repository (rules_python, bazel_tools, ...): its rules record
        else:
            module = self._load_bzl(f"{pkg}/{name}" if pkg else name)
        pairs = [(s, s) for s in symbols] + list(aliases.items())
        for local, exported in pairs:
            if module is None:
                value = self._record(exported)
            elif exported in module:
                value = module[exported]
            else:
                raise BuildError(f"{label} has no symbol {exported!r}")
            scope[local] = value

    def _load_bzl(self, rel: str) -> dict:
        if rel not in self._bzl_modules:
            path = os.path.join(self.root, rel)
            if not os.path.isfile(path):
                raise BuildError(f"load(): no file {rel}")
            scope = self._exec(path, self._builtins())
            self._bzl_modules[rel] = {k: v for k, v in scope.items() if not k.startswith("_")}
        return self._bzl_modules[rel]

    def _evaluate_build(self, package: str) -> None:
        self.current_package = package
        for n in BUILD_FILE_NAMES:
            path = os.path.join(self.abs(package), n)
            if os.path.isfile(path):
                try:
                    self._exec(path, self._builtins())
                except BuildError as e:
                    self.problems.append(f"//{package}: {e}")
                break
        self.current_package = ""

    # -- queries ----------------------------------------------------------------------------------
    def resolve(self, label, package: str) -> str:
        """A label as '//pkg:name' for targets, 'pkg/file' for source files, '@repo//...' external."""
        repo, pkg, name = _split_label(label, package)
        if repo:
            return f"{repo}//{pkg}:{name}"
        target = f"//{pkg}:{name}"
        if target in self.targets:
            return target
        return f"{pkg}/{name}" if pkg else name

    def closure(self, label: str, _seen=None) -> set[str]:
        """Files and external labels reachable from `label` through srcs, data, deps (its runfiles)."""
        seen = set() if _seen is None else _seen
        if label in seen:
            return seen
        seen.add(label)
        target = self.targets.get(label)
        if target is not None:
            for attr in ("srcs", "data", "deps"):
                for item in target.attrs.get(attr) or []:
                    self.closure(self.resolve(item, target.package), seen)
        return seen

    def direct_files(self, target: Target, attrs=("srcs", "data")) -> set[str]:
        out = set()
        for attr in attrs:
            for item in target.attrs.get(attr) or []:
                out.add(self.resolve(item, target.package))
        return out


def _module_name(rel: str) -> str:
    parts = rel[:-3].split("/")
    if parts[-1] == "__main__":
        parts = parts[:-1]
    return ".".join(parts)


def _expand_arg(ws: Workspace, arg: str, package: str) -> str:
    m = re.fullmatch(r"\$\((?:rootpath|location|execpath)\s+([^)]+)\)", arg)
    return ws.resolve(m.group(1), package) if m else arg


def check(root: str) -> list[str]:
    """The problems of the workspace at `root` (empty when the build covers the tree)."""
    ws = Workspace(root)
    problems = list(ws.problems)
    if problems:
        return problems

    def junk(rel: str) -> bool:
        return any(glob_match(p, rel) for p in ws.junk)

    tree = []
    for top in COVERED_TREES:
        tree += [f for f in ws.files(top) if not junk(f)]
    tree += [f for f in ws.files("", max_depth=1) if f.endswith(".py")]
    tree = sorted(set(tree))
    test_files = sorted(f for f in tree if f.startswith("tests/") and any(glob_match(p, f[6:]) for p in TEST_FILE_PATTERNS))

    for rel in tree:
        if BAD_NAME.search(rel):
            problems.append(f"{rel!r}: whitespace in a file name breaks Bazel 4's runfiles: rename it")

    libraries = [t for t in ws.targets.values() if t.kind == "py_library"]
    binaries = [t for t in ws.targets.values() if t.kind == "py_binary"]
    tests = [t for t in ws.targets.values() if t.kind == "py_test"]
    in_library = set().union(*(ws.direct_files(t, ("srcs",)) for t in libraries)) if libraries else set()
    in_any = set()
    for t in ws.targets.values():
        in_any |= ws.direct_files(t)

    # Test files: exactly one py_test each, running it through pytest.
    runners: dict[str, list[Target]] = {f: [] for f in test_files}
    for t in tests:
        for f in ws.direct_files(t, ("srcs",)):
            if f in runners:
                runners[f].append(t)
    for f in test_files:
        found = runners[f]
        if not found:
            problems.append(f"{f}: no py_test runs this test file")
            continue
        if len(found) > 1:
            problems.append(f"{f}: run by several py_test targets: {', '.join(t.label for t in found)}")
        for t in found:
            main = ws.resolve(t.attrs.get("main") or f":{t.name}.py", t.package)
            args = [_expand_arg(ws, a, t.package) for a in t.attrs.get("args") or []]
            if main != PYTEST_MAIN or not args or args[0] != f:
                problems.append(f"{f}: {t.label} does not run it through pytest ({PYTEST_MAIN} with the file as first argument)")

    # Every file in a target: Python files in a py_library, the rest in some target's srcs/data.
    test_set = set(test_files)
    for rel in tree:
        if rel in test_set:
            continue
        if rel.endswith(".py"):
            if rel not in in_library:
                problems.append(f"{rel}: in no py_library (srcs)")
        elif rel not in in_any:
            problems.append(f"{rel}: in no target's srcs or data")

    # CLIs: a py_binary running the file, or its module (tag py_module=<module>).
    run_files = {ws.resolve(t.attrs.get("main") or f":{t.name}.py", t.package) for t in binaries}
    run_modules = {tag.split("=", 1)[1] for t in binaries for tag in t.attrs.get("tags") or [] if tag.startswith("py_module=")}
    for rel in tree:
        top = rel.split("/", 1)[0] if "/" in rel else ""
        if not rel.endswith(".py") or top not in CLI_TREES or rel in test_set:
            continue
        with open(ws.abs(rel), encoding="utf-8", errors="replace") as f:
            if not MAIN_GUARD.search(f.read()):
                continue
        if rel not in run_files and _module_name(rel) not in run_modules:
            problems.append(f"{rel}: a CLI (__main__ guard) that no py_binary runs")

    # Every test sees the whole project and ../shared/data.
    needed = [f for f in tree if f not in test_set] + [SHARED_DATA]
    for t in sorted(tests, key=lambda t: t.label):
        if not t.package.startswith("tests"):
            continue
        seen = ws.closure(t.label)
        missing = [f for f in needed if f not in seen]
        if missing:
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            problems.append(f"{t.label}: its runfiles lack {', '.join(missing[:3])}{more}")
    return problems


def main(argv: list[str]) -> int:
    root = argv[0] if argv else os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    problems = check(root)
    for p in problems:
        print(p)
    if not problems:
        print(f"check_build: the Bazel build of {root} covers its tree")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
