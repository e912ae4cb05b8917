"""Write models/<name>/ atomically: the pair is staged in a sibling temp dir, then swapped in.

On Linux the swap is one `renameat2(RENAME_EXCHANGE)` call, so a reader of models/<name>/
sees either the old complete pair or the new one, never a mix and never a missing folder.
Where that call is unavailable the old folder is renamed aside first (a window of
microseconds without the folder; the service's watcher keeps its model and retries).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path

from runtime.modeldir import ModelDir

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(first: Path, second: Path) -> bool:
    """Atomically swap two paths; False when the kernel or libc cannot."""
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(code, f"cannot swap {first} and {second}: {os.strerror(code)}")


def swap_in(staged: Path, target: Path) -> None:
    """Make `staged` become `target`; the old target (if any) is deleted afterwards."""
    if not target.exists():
        staged.rename(target)
        return
    if _exchange(staged, target):
        shutil.rmtree(staged)  # now holds the old pair
        return
    aside = target.with_name(f".{target.name}.old-{os.getpid()}")
    target.rename(aside)
    staged.rename(target)
    shutil.rmtree(aside)


def release(model: ModelDir, target: Path, *, registry: dict) -> ModelDir:
    """Copy model.onnx and the card (plus a `registry` entry: name, version, run, promotion) into
    `target` atomically and return the verified released directory."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
    try:
        shutil.copyfile(model.onnx_path, staged / "model.onnx")
        card = {**model.card, "registry": registry}
        (staged / "card.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        ModelDir.load(staged)  # the staged pair verifies before anyone can see it
        staged.chmod(0o755)
        swap_in(staged, target)
    finally:
        if staged.exists():
            shutil.rmtree(staged)
    return ModelDir.load(target)
