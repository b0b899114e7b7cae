"""Every file an importer reads on a model's behalf: confined to the model's folder, and bounded.

Converting a model is something one does with files from strangers, and a model file may name other
files: ONNX initializers stored as external data, the weight shards of a TF.js manifest, the members
of a `.keras` archive, HDF5 datasets whose bytes live in another file. Whatever a model names is read
here, under two rules, so that the importers (tools/onnx_to_gapnet.py, tools/keras_to_gapnet.py and
the TF.js importer) cannot disagree on them:

- Confinement (`confined_path`, `open_confined`): a name is resolved against the model's folder after
  symlinks (os.path.realpath) and must lie inside the real path of that folder and be a regular file.
  An absolute name, a `..` that climbs out (also after a folder that exists: `weights/../../etc/passwd`,
  the bypass of CVE-2024-27318 that onnx's own check in Debian's onnx 1.12 still has), a symlink
  leading out, a directory, a FIFO or a device are refused with one line. Otherwise the bytes of any
  file the user can read (keys, /etc/passwd) would land in the converted model, which is then shared.
  The project checks the name itself instead of trusting a framework's loader to. (A hard link is the
  file itself and cannot be told from it: the rule is about names, as a model can only give names.)
- Bounds (`read_member`, `copy_member`, `read_bounded`, `Budget`): an archive member or a named file is
  read with a byte bound, checked against its declared size before anything is inflated or read, and
  against the bytes actually read while streaming (a zip header can lie about the size); the weights
  read in all are bounded the same way. A 4 MB archive can otherwise inflate to gigabytes in memory.
  The default, `DEFAULT_MAX_BYTES` (1 GiB), is gapnet's own limit on a model file (`max_file_bytes`),
  so no weights that fit in a gapnet model are refused; a test lowers it with the environment
  variable GAPNET_IMPORT_MAX_BYTES (or the `limit` parameter).
"""
import io
import os
import stat

from gapnet_file import ConversionError

DEFAULT_MAX_BYTES = 1 << 30  # gapnet's max_file_bytes (docs/robustness.md): a larger model cannot load
LIMIT_VARIABLE = "GAPNET_IMPORT_MAX_BYTES"
CHUNK_BYTES = 1 << 20


def max_bytes():
    """The bound on one member or named file: GAPNET_IMPORT_MAX_BYTES when set (a positive integer),
    else DEFAULT_MAX_BYTES."""
    text = os.environ.get(LIMIT_VARIABLE)
    if text is None:
        return DEFAULT_MAX_BYTES
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ConversionError(f"{LIMIT_VARIABLE}={text!r} is not a positive number of bytes")
    return value


def _mib(count):
    """A byte count for messages, with its MiB when it has any."""
    return f"{count} bytes" + (f" ({count / (1 << 20):.1f} MiB)" if count >= 1 << 20 else "")


def model_folder(model_path):
    """The folder a model's names are resolved against: the one holding the model file as named (as
    onnx's loader takes it), not the target of a symlink to it."""
    return os.path.dirname(os.path.abspath(model_path))


def confined_path(folder, location, what):
    """The real path of `location` (a name a model file gives) inside `folder`, or ConversionError.

    `what` names the thing in the message ("initializer 'W'"). The rule: `location` is relative, and
    os.path.realpath(folder/location) lies inside os.path.realpath(folder) and is a regular file."""
    shown = repr(location)
    if not isinstance(location, str) or not location or "\0" in location:
        raise ConversionError(f"{what}: location {shown} is not a file name")
    if os.path.isabs(location):
        raise ConversionError(
            f"{what}: location {shown} is an absolute path; only files in the model's folder are read"
        )
    root = os.path.realpath(folder)
    path = os.path.realpath(os.path.join(root, location))
    if os.path.commonpath([root, path]) != root:
        raise ConversionError(f"{what}: location {shown} leads outside the model's folder {root} (to {path}); refused")
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        raise ConversionError(f"{what}: location {shown}: {e.strerror}")
    if not stat.S_ISREG(mode):
        raise ConversionError(f"{what}: location {shown} is not a regular file (a directory, FIFO or device); refused")
    return path


def open_confined(folder, location, what):
    """`location` opened for reading in binary, after confined_path. The final name is opened without
    following a symlink and without blocking, and checked again to be a regular file, so a name
    swapped for a symlink or a FIFO after the check is refused too."""
    path = confined_path(folder, location, what)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        raise ConversionError(f"{what}: location {location!r}: {e.strerror}")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ConversionError(f"{what}: location {location!r} is not a regular file; refused")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


class Budget:
    """The bytes of weights an importer reads on a model's behalf, in all, within the bound (limit,
    default max_bytes()). Each file or member is bounded on its own, but a model may name the same
    1 GiB file from a thousand tensors, or declare a huge array an HDF5 file never stores (read back
    as its fill value): the total must be bounded too, before each array is read."""

    def __init__(self, limit=None):
        self.limit = max_bytes() if limit is None else limit
        self.used = 0

    def take(self, count, what):
        """Counts `count` bytes about to be read for `what`; refuses when the total passes the bound."""
        if self.used + count > self.limit:
            raise ConversionError(
                f"{what}: {_mib(count)} more would make {_mib(self.used + count)} of weights, beyond the import "
                f"bound of {_mib(self.limit)}"
            )
        self.used += count


def read_bounded(stream, count, what, limit=None):
    """Exactly `count` bytes from a binary stream at its position, with count <= the bound (limit,
    default max_bytes()); a stream that ends early is refused."""
    limit = max_bytes() if limit is None else limit
    if count > limit:
        raise ConversionError(f"{what} is {_mib(count)}, beyond the import bound of {_mib(limit)}")
    data = stream.read(count)
    if len(data) != count:
        raise ConversionError(f"{what}: the file ends after {len(data)} of {count} bytes")
    return data


def copy_member(archive, name, sink, limit=None):
    """Streams the archive member `name` (a zipfile.ZipFile's) into the binary file `sink`, inflating
    at most the bound (limit, default max_bytes()): the size its header declares is checked before
    anything is inflated, and the bytes inflated are counted as they come, so a header that lies is
    caught after at most the bound plus one chunk. Returns the number of bytes copied."""
    limit = max_bytes() if limit is None else limit
    what = f"{name} in the archive"
    declared = archive.getinfo(name).file_size
    if declared > limit:
        raise ConversionError(f"{what} declares {_mib(declared)}, beyond the import bound of {_mib(limit)}")
    total = 0
    with archive.open(name) as member:
        while True:
            chunk = member.read(CHUNK_BYTES)
            if not chunk:
                break
            total += len(chunk)
            if total > limit or total > declared:
                raise ConversionError(
                    f"{what} inflates past {_mib(min(limit, declared))} (its header declares {_mib(declared)})"
                )
            sink.write(chunk)
    return total


def read_member(archive, name, limit=None):
    """The bytes of archive member `name`, bounded as copy_member bounds them (for small members such
    as config.json; a large one goes through copy_member into a temporary file)."""
    sink = io.BytesIO()
    copy_member(archive, name, sink, limit)
    return sink.getvalue()


def check_hdf5_self_contained(h5file, what):
    """Refuses (ConversionError) an HDF5 file that would make h5py read another file: an external link,
    a dataset with external raw storage (its bytes in any file it names) or a virtual dataset (mapped
    from other files). Walks every group through hard links, reading link records and dataset layouts
    only, so nothing outside the file is opened and no data is read. Soft links are not followed: they
    name paths inside the file, which the walk checks where they are stored."""
    import h5py  # here, so that the importers without HDF5 (TF.js) need no h5py

    seen = set()
    pending = [("", h5file)]
    while pending:
        path, group = pending.pop()
        if group.id in seen:
            continue
        seen.add(group.id)
        for name in group:
            where = f"{path}/{name}"
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise ConversionError(
                    f"{what}: {where} is an external link to {link.filename!r}; refused (read nothing outside the file)"
                )
            if isinstance(link, h5py.SoftLink):
                continue
            if not isinstance(link, h5py.HardLink):
                raise ConversionError(f"{what}: {where} is a link of an unknown kind; refused")
            item = group.get(name)
            if isinstance(item, h5py.Group):
                pending.append((where, item))
            elif isinstance(item, h5py.Dataset):
                if item.external:
                    files = ", ".join(repr(e[0]) for e in item.external)
                    raise ConversionError(f"{what}: dataset {where} stores its data in another file ({files}); refused")
                if item.is_virtual:
                    raise ConversionError(
                        f"{what}: dataset {where} is a virtual dataset (mapped from other files); refused"
                    )
