"""The folders on-disk stores keep their data in, and the rules for writing them.

A store writes, replaces and deletes only inside a folder it created and recognises as its own:
a folder holding a marker file, `ragembed-store.json`, that names the store. So

  - a folder of the user's that happens to carry the collection's name is never touched: opening
    it is refused with an error that names the folder and what is in it;
  - a folder another store wrote (a `qdrant-edge:DIR` collection opened as `memory:DIR`) is
    refused with the URI that opens it;
  - a second writer (another Retriever on the same folder, another process) is refused with the
    process id of the one that holds the folder.

The lock is filelock's (flock on POSIX, LockFileEx on Windows), held from the moment a store may
write until it is closed; the holder's process id sits beside it for the error message.
Folders that ragembed wrote before markers existed are recognised by their own files (see
`recognise`), so nothing stored earlier is refused.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from ragembed.errors import StoreError

MARKER = "ragembed-store.json"
LOCK = "ragembed.lock"
HOLDER = "ragembed.lock.holder"
# What each store kind's folder is, for messages that name the URI opening it: memory and Edge
# folders are DIR/<collection>; Qdrant local mode and embedded Weaviate folders are DIR itself.
PER_COLLECTION = {"memory", "qdrant-edge"}
# Files an engine itself leaves in a folder before ragembed's marker is there (qdrant-client's lock).
ENGINE_FILES = {"qdrant-local": {".lock"}}


@dataclass(frozen=True)
class Claim:
    """A folder this process may write: its lock, held until `release()`."""

    folder: Path
    lock: FileLock

    def release(self) -> None:
        (self.folder / HOLDER).unlink(missing_ok=True)
        self.lock.release()


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The folder's marker, None if it has none; a marker that is not ragembed's is an error."""
    path = folder / MARKER
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreError(f"cannot read {path}: {exc}; check the folder's permissions") from exc
    try:
        marker = json.loads(text)
    except ValueError:
        marker = None
    if not isinstance(marker, dict) or not isinstance(marker.get("store"), str):
        raise StoreError(
            f"{path} is not a ragembed marker (it should be a JSON object naming the store); the "
            "folder was written by another program or is damaged. ragembed will not write there: "
            "move the file away if the folder is yours to reuse, or choose another folder"
        )
    return marker


def write_marker(folder: Path, store: str, **fields: Any) -> None:
    """Write the marker atomically (a new file renamed over the old), so a reader sees the old
    marker or the new one, never half of one."""
    staging = folder / f".{MARKER}.tmp"
    with open(staging, "w", encoding="utf-8") as out:
        json.dump({"store": store, **fields}, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(staging, folder / MARKER)


def recognise(folder: Path) -> str | None:
    """Which ragembed store wrote `folder`: its marker, or the files of a store written before
    markers existed; None for anything else."""
    marker = read_marker(folder)
    if marker is not None:
        return str(marker["store"])
    if (folder / "ragembed-schema.json").is_file():
        return "qdrant-edge"
    if (folder / "ragembed-embedded.json").is_file():
        return "weaviate-embedded"
    if _json_object(folder / "meta.json").keys() >= {"collections"}:
        return "qdrant-local"  # a qdrant-client local-mode folder: ragembed opens only its own collections
    legacy = _json_object(folder / "schema.json")
    if legacy.get("format") == 1 and "schema" in legacy:
        return "memory"
    return None


def _holds_only(folder: Path, names: set[str]) -> bool:
    """Whether `folder` is a real folder (not a link) holding nothing but files named in `names`."""
    try:
        return folder.is_dir() and not folder.is_symlink() and all(p.name in names for p in folder.iterdir())
    except OSError:
        return False


def check_can_open(folder: Path, store: str) -> bool:
    """Raise StoreError unless `folder` may become or already is `store`'s; True if it exists."""
    check_reachable(folder)
    if store in PER_COLLECTION and folder.parent.is_dir():
        around = _recognised(folder.parent)  # DIR of memory:DIR must not be another store's own folder
        if around is not None and around not in PER_COLLECTION:
            raise StoreError(
                f"{folder.parent} is a {around} store's folder; open it with {uri_of(folder.parent, around)}, "
                f"or give {store} a folder of its own"
            )
    if not folder.exists():
        if folder.is_symlink():
            raise StoreError(f"{folder} is a broken symbolic link where the store's folder belongs; remove it")
        return False
    if not folder.is_dir():
        raise StoreError(
            f"{folder} is a file, not a folder, where the store's folder belongs; move it, or choose "
            "another folder or collection name"
        )
    try:
        entries = sorted(p.name for p in folder.iterdir())
    except OSError as exc:
        raise StoreError(f"cannot read the folder {folder}: {exc.strerror}; check its permissions") from exc
    before_data = {LOCK, HOLDER, f".{MARKER}.tmp"}
    # A collection folder holding only ragembed's lock is what an open refused before any write
    # leaves (memory:DIR claims DIR/<collection> when it opens).
    leftovers = {name for name in entries if _holds_only(folder / name, before_data)}
    if not set(entries) - before_data - ENGINE_FILES.get(store, set()) - leftovers:
        return True  # empty, or only what ragembed or the engine leaves before any data
    found = recognise(folder)
    if found == store:
        return True
    if found is not None:
        raise StoreError(
            f"{folder} holds a {found} store written by ragembed, not a {store} one; open it with "
            f"{uri_of(folder, found)}. (Opening it as {store} would replace its data.)"
        )
    others = {name: _recognised(folder / name) for name in entries if (folder / name).is_dir()}
    collections = [f"{name} ({kind}: {uri_of(folder / name, kind)})" for name, kind in others.items() if kind]
    if collections:
        raise StoreError(
            f"{folder} holds ragembed collections of other stores: {', '.join(collections[:5])}; "
            f"open them that way, or give {store} a folder of its own"
        )
    shown = ", ".join(entries[:5]) + (f" and {len(entries) - 5} more" if len(entries) > 5 else "")
    raise StoreError(
        f"{folder} already holds files ragembed did not write ({shown}); ragembed writes only in "
        "folders it created, so it will not use this one. Choose another folder or collection name"
    )


def check_reachable(folder: Path) -> None:
    """Raise StoreError if this process cannot reach `folder`, or create it where it is missing:
    a file stands where a folder on its path belongs (`memory:FILE` puts the store's folder in
    FILE/<collection>), or a folder on its path may not be read. Whether `folder` itself is a
    folder, and a readable one, is check_can_open's."""
    try:
        folder.stat()
        return  # it is there
    except FileNotFoundError:
        problem: OSError | None = None  # missing: fine if the nearest folder above can hold it
    except OSError as exc:
        problem = exc  # not a folder on the way (ENOTDIR), no permission (EACCES), ...
    for above in folder.parents:  # the nearest path above that this process can see
        try:
            mode = above.stat().st_mode
        except OSError:
            continue
        if not stat.S_ISDIR(mode):
            raise StoreError(
                f"{above} is a file, not a folder; the store keeps its data in the folder {folder}, "
                "which cannot be made inside a file. Give the store the path of a folder (a new one "
                "is created), or move the file away"
            )
        if problem is None:
            return
        if isinstance(problem, PermissionError):
            raise StoreError(
                f"cannot read the folder {above}: {problem.strerror}; the store's folder {folder} is "
                "inside it. Check its permissions (this process must be able to read and enter it), "
                "or choose another folder"
            ) from problem
        break
    if problem is not None:
        raise StoreError(
            f"cannot open the store's folder {folder}: {problem.strerror or problem}; check the path"
        ) from problem


def claim(folder: Path, store: str) -> Claim:
    """Create `folder` if needed and take its lock, for `store` to write it. Raises StoreError if
    the folder is not the store's (see check_can_open) or another writer holds it;
    PermissionError if the folder cannot be written (the caller may open it read-only)."""
    check_can_open(folder, store)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / LOCK, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise StoreError(
            f"{folder} is open for writing by {holder_of(folder)}; one writer at a time: close that "
            "store first (Retriever.close(), or let the process end), or use another folder. For "
            "concurrent writers use a server (Qdrant or Weaviate)"
        ) from None
    try:
        (folder / HOLDER).write_text(
            f"{os.getpid()} {' '.join(sys.argv)[:200]}\n", encoding="utf-8", errors="backslashreplace"
        )  # argv may hold undecodable bytes
        check_can_open(folder, store)  # again under the lock: another writer may have got there first
    except BaseException:
        lock.release()
        raise
    return Claim(folder, lock)


def collections_in(parent: Path, store: str) -> list[str]:
    """Names of the subfolders of `parent` that hold `store` collections (for error messages)."""
    found = []
    try:
        for entry in sorted(parent.iterdir()):
            if entry.is_dir() and _recognised(entry) == store:
                found.append(entry.name)
    except OSError:
        pass
    return found


def holder_of(folder: Path) -> str:
    try:
        pid, _, command = (folder / HOLDER).read_text(encoding="utf-8").strip().partition(" ")
    except OSError:
        return "another store (its process is not recorded)"
    this = " (this process: another store object still open)" if pid == str(os.getpid()) else ""
    return f"process {pid}{this}" + (f", `{command}`" if command and not this else "")


def uri_of(folder: Path, store: str) -> str:
    if store in PER_COLLECTION:
        return f"{store}:{folder.parent} with collection {folder.name!r}"
    return f"{store}:{folder}"


def _recognised(folder: Path) -> str | None:
    try:
        return recognise(folder)
    except StoreError:
        return None


def _json_object(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
