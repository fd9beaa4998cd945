"""House idioms of the sphinx-* packages: outputs, registries, dtype names, CLI exits.

Every package carries a byte-identical copy of this file, because the packages may not
import each other downwards (sphinx-tiling and sphinx-tasks import nothing of ours).
`tests/integration/test_house.py` checks that the copies agree and tests the rules once
for each package. Standard library only.

Output rules (one policy for every package and CLI):
- an output that exists is refused unless ``overwrite`` (an empty folder counts as free);
- an output equal to, inside, or containing an input is refused, overwrite or not;
- with ``overwrite`` a folder is replaced only when everything in it is something the tool
  itself writes (its ``owns`` patterns); other files make it refuse, naming them;
- the output is written under a hidden staging name beside the target and renamed when
  complete, with the umask's normal permissions;
- a staging entry left by a killed run is removed by the next run on the same target.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import shutil
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Generic, TypeVar

T = TypeVar("T")

__all__ = [
    "DTYPE_VOCABULARY",
    "OutputError",
    "Registry",
    "UnknownNameError",
    "check_output",
    "confined_path",
    "dtype_name",
    "one_line",
    "run_cli",
    "staged_dir",
    "staged_file",
    "unwrap_state_dict",
]


class OutputError(ValueError):
    """An output path that the house rules refuse."""


# ---------------------------------------------------------------------------- outputs


def _real(path: str | os.PathLike[str]) -> Path:
    return Path(os.path.realpath(os.path.abspath(path)))


def check_output(
    target: str | os.PathLike[str],
    inputs: Iterable[str | os.PathLike[str]] = (),
    *,
    overwrite: bool = False,
) -> Path:
    """Refuse `target` if it is, holds or lies inside an input, or exists without overwrite."""
    target = Path(target)
    real_target = _real(target)
    for given in inputs:
        real_input = _real(given)
        if real_target == real_input:
            raise OutputError(f"{target}: the output would replace the input {given}")
        if real_input in real_target.parents:
            raise OutputError(f"{target}: the output lies inside the input {given}")
        if real_target in real_input.parents:
            raise OutputError(f"{target}: the output would contain the input {given}")
    if not overwrite and os.path.lexists(target) and not _is_empty_dir(target):
        raise OutputError(f"{target}: already exists; pass overwrite (--overwrite) to replace it")
    return target


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _normal_permissions(path: Path) -> None:
    """Give `path` (recursively) the permissions a plain open()/mkdir() would have given."""
    mask = _umask()
    if path.is_dir() and not path.is_symlink():
        os.chmod(path, 0o777 & ~mask)
        for child in path.iterdir():
            _normal_permissions(child)
    elif path.is_file() and not path.is_symlink():
        executable = os.stat(path).st_mode & 0o111
        os.chmod(path, (0o777 if executable else 0o666) & ~mask)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _staging(target: Path, kind: str) -> Path:
    return target.parent / f".{target.name}.{kind}-{os.getpid()}"


def _clean_stale(target: Path) -> None:
    """Remove what a killed run on `target` left behind (its pid is gone)."""
    parent = target.parent
    if not parent.is_dir():
        return
    for kind in ("staging", "replaced"):
        prefix = f".{target.name}.{kind}-"
        for entry in parent.iterdir():
            if not entry.name.startswith(prefix):
                continue
            pid = entry.name[len(prefix) :]
            if not pid.isdigit() or _pid_alive(int(pid)):
                continue
            if kind == "replaced" and not os.path.lexists(target):
                os.replace(entry, target)  # the run died between its two renames: undo
            else:
                _remove(entry)


def _prepare(
    target: str | os.PathLike[str],
    inputs: Iterable[str | os.PathLike[str]],
    overwrite: bool,
) -> Path:
    target = check_output(target, inputs, overwrite=overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale(target)
    return target


def _install(stage: Path, target: Path) -> None:
    """Move the finished `stage` onto `target`; an old entry is removed only afterwards."""
    _normal_permissions(stage)
    if not os.path.lexists(target):
        os.replace(stage, target)
        return
    aside = _staging(target, "replaced")
    os.replace(target, aside)
    try:
        os.replace(stage, target)
    except BaseException:
        os.replace(aside, target)
        raise
    _remove(aside)


@contextlib.contextmanager
def staged_file(
    target: str | os.PathLike[str],
    inputs: Iterable[str | os.PathLike[str]] = (),
    *,
    overwrite: bool = False,
) -> Iterator[Path]:
    """Yield a hidden path beside `target` to write; it becomes `target` when the block ends.

    On any exception (Ctrl-C included) the staged file is removed and `target` is untouched.
    """
    target = _prepare(target, inputs, overwrite)
    if target.is_dir() and not target.is_symlink():
        raise OutputError(f"{target}: is a folder; expected a file path")
    stage = _staging(target, "staging")
    _remove(stage)
    try:
        yield stage
        if not stage.is_file():
            raise OutputError(f"{target}: nothing was written")
        _install(stage, target)
    except BaseException:
        _remove(stage)
        raise


@contextlib.contextmanager
def staged_dir(
    target: str | os.PathLike[str],
    inputs: Iterable[str | os.PathLike[str]] = (),
    *,
    overwrite: bool = False,
    owns: Iterable[str] = ("*",),
) -> Iterator[Path]:
    """Yield a hidden folder beside `target` to fill; it replaces `target` when the block ends.

    `owns` are glob patterns (on paths relative to the folder) of what this tool writes;
    an existing folder is replaced only when it holds nothing else.
    """
    target = _prepare(target, inputs, overwrite)
    if os.path.lexists(target):
        if not target.is_dir() or target.is_symlink():
            raise OutputError(f"{target}: is a file; expected a folder")
        foreign = _foreign_entries(target, tuple(owns))
        if foreign:
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise OutputError(
                f"{target}: holds files this tool did not write ({shown}); "
                "choose another output folder or remove them"
            )
    stage = _staging(target, "staging")
    _remove(stage)
    try:
        stage.mkdir()
        yield stage
        _install(stage, target)
    except BaseException:
        _remove(stage)
        raise


def _foreign_entries(folder: Path, owns: tuple[str, ...]) -> list[str]:
    foreign = []
    for path in sorted(folder.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            continue
        relative = path.relative_to(folder).as_posix()
        if not any(fnmatch.fnmatchcase(relative, pattern) for pattern in owns):
            foreign.append(relative)
    return foreign


def confined_path(
    root: str | os.PathLike[str], relative: str, *, what: str = "path"
) -> Path:
    """`root / relative` for a path read from data; absolute or `..` paths are refused."""
    if not isinstance(relative, str) or not relative:
        raise ValueError(f"{what} {relative!r}: expected a non-empty relative path string")
    posix, windows = PurePosixPath(relative), PureWindowsPath(relative)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or ".." in windows.parts:
        raise ValueError(f"{what} {relative!r}: must be a relative path inside {root}")
    return Path(root) / posix


# ---------------------------------------------------------------------------- checkpoints

STATE_DICT_WRAPPERS = ("model", "state_dict", "module", "model_state_dict")


def unwrap_state_dict(obj: object, source: object) -> dict:
    """The name -> tensor mapping inside a loaded checkpoint (``{"model": {...}}`` etc.).

    Every package reads checkpoint containers this way; a container that refers to
    itself, or that holds no tensors, gets one error naming `source`.
    """
    seen: set[int] = set()
    while isinstance(obj, dict) and id(obj) not in seen:
        seen.add(id(obj))
        wrapped = [key for key in STATE_DICT_WRAPPERS if isinstance(obj.get(key), dict)]
        if not wrapped:
            break
        obj = obj[wrapped[0]]
    looped = isinstance(obj, dict) and any(
        isinstance(obj.get(key), dict) for key in STATE_DICT_WRAPPERS
    )
    if not isinstance(obj, dict) or looped:
        raise ValueError(
            f"{source}: expected a state dict (names -> tensors), possibly under "
            f"{'/'.join(STATE_DICT_WRAPPERS)}; found {type(obj).__name__}"
        )
    for name, value in obj.items():
        if not isinstance(name, str) or not (hasattr(value, "shape") and hasattr(value, "dtype")):
            raise ValueError(
                f"{source}: entry {name!r} is a {type(value).__name__}, expected a tensor"
            )
    if not obj:
        raise ValueError(f"{source}: the checkpoint holds no tensors")
    return obj


# ---------------------------------------------------------------------------- registries


class UnknownNameError(KeyError, ValueError):
    """A name missing from a registry; the message lists the known names."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class Registry(Generic[T]):
    """Named objects of one kind: ``register``, ``get``, ``names`` with glob filters."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, obj: T, *, overwrite: bool = False) -> T:
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} name {name!r}: expected a non-empty string")
        if name in self._items and not overwrite:
            raise ValueError(
                f"{self.kind} {name!r} is already registered; pass overwrite=True to replace it"
            )
        self._items[name] = obj
        return obj

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except (KeyError, TypeError):
            known = ", ".join(self.names()) or "none"
            raise UnknownNameError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def names(self, pattern: str | None = None) -> list[str]:
        names = sorted(self._items)
        if pattern is None:
            return names
        return [name for name in names if fnmatch.fnmatchcase(name, pattern)]

    def __contains__(self, name: object) -> bool:
        return name in self._items


# ---------------------------------------------------------------------------- dtypes

DTYPE_VOCABULARY = {
    "float32": "float32",
    "fp32": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
}


def dtype_name(value: object) -> str:
    """The canonical name ('float32', 'bfloat16', 'float16') of a dtype name or torch dtype."""
    text = str(value).strip().lower().removeprefix("torch.")
    try:
        return DTYPE_VOCABULARY[text]
    except KeyError:
        raise ValueError(
            f"unknown dtype {value!r}; expected float32|fp32, bfloat16|bf16 or float16|fp16|half"
        ) from None


# ---------------------------------------------------------------------------- CLIs


def one_line(error: BaseException) -> str:
    """The message of `error` folded onto one line."""
    text = " ".join(str(error).split())
    return text or type(error).__name__


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_cli(
    prog: str,
    body: Callable[[], int],
    errors: tuple[type[BaseException], ...] = (ValueError, OSError),
) -> int:
    """Run a CLI body: expected errors print one line (exit 1); SIGINT / SIGTERM exit 130.

    Staged outputs are removed as the interrupt unwinds, so nothing partial is left.
    """
    previous = None
    with contextlib.suppress(ValueError):  # signal only works in the main thread
        previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return body()
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except errors as error:
        print(f"{prog}: error: {one_line(error)}", file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
