"""A folder of PNG/JPEG images with one subfolder per class: the columns `image`
([rows, channels, height, width]) and `label` (the class's index)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from ...core.errors import DataError
from .base import Table, _os_errors, known

_PIXELS_PER_BYTE = 8300  # deflate expands a byte to at most 1032, a 1-bit PNG holds 8 pixels a byte; JPEG far fewer
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _read_images(folder: Path) -> Table:
    """One subfolder per class, in sorted order, giving labels 0..K-1; in each, its PNG and
    JPEG files in sorted order. Other files, nested folders and hidden entries are ignored.
    Columns: `image` uint8 [N, C, H, W] and `label` int64 [N]."""
    classes = _class_folders(folder)
    files: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        images = _image_files(folder, name)
        files += [f"{name}/{image}" for image in images]
        labels += [label] * len(images)
    pixels = _decode_all(folder, files)
    columns = {"image": pixels, "label": np.array(labels, dtype=np.int64)}
    return Table(folder, "images", columns, len(files), classes=tuple(classes), files=tuple(files))


def _entries(folder: Path, want_folders: bool) -> list[str]:
    """The sorted names of the folder's visible subfolders (or files), links followed."""
    with _os_errors(folder), os.scandir(folder) as entries:
        return sorted(entry.name for entry in entries if not entry.name.startswith(".")
                      and (entry.is_dir() if want_folders else entry.is_file()))


def _class_folders(folder: Path) -> list[str]:
    classes = _entries(folder, want_folders=True)
    if not classes:
        raise DataError(f"{folder} is a folder, but not an image folder: it has no subfolders. An image folder "
                        f"holds one subfolder per class, each holding PNG or JPEG files; dgmc also reads {known()}.")
    return classes


def _image_files(folder: Path, name: str) -> list[str]:
    images = [file for file in _entries(folder / name, want_folders=False) if file.lower().endswith(_IMAGE_SUFFIXES)]
    if not images:
        raise DataError(f"{folder}: the class folder '{name}' holds no PNG or JPEG images.")
    return images


def _decode_all(folder: Path, files: list[str]) -> np.ndarray:
    """Every image as [C, H, W], all of the first image's size and channels (checked from each
    file's header before it is decoded, so a corrupt one claiming a huge size costs nothing)."""
    first = _decode(folder, files[0], None)
    return np.stack([first, *(_decode(folder, name, (files[0], first.shape)) for name in files[1:])])


def _decode(folder: Path, name: str, first: tuple[str, tuple[int, ...]] | None) -> np.ndarray:
    """One image as uint8 [C, H, W]. Converted by Pillow's own classing of its mode: grey
    ones (1, L, LA) to L, one channel; all with colour (RGB, RGBA, P, PA, CMYK, YCbCr...) to
    RGB, three. Alpha is dropped, not composited. 16-bit and float images are refused rather
    than clipped to 8 bits. Images over Pillow's decompression-bomb limit are refused."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(folder / name, formats=("PNG", "JPEG")) as image:
                mode = "L" if Image.getmodebase(image.mode) == "L" else "RGB"
                shape = (len(mode), image.height, image.width)
                _check_pixel_count(folder, name, shape)
                if first is not None and shape != first[1]:
                    raise DataError(f"{folder}: the image '{name}' is {_size(shape)}, but the first image, "
                                    f"'{first[0]}', is {_size(first[1])}; all images must be alike.")
                if image.mode in ("I", "F") or image.mode.startswith("I;"):
                    raise DataError(f"{folder}: the image '{name}' has {image.mode} pixels (16 or 32 bits); "
                                    f"dgmc reads 8-bit images.")
                pixels = np.asarray(image.convert(mode), dtype=np.uint8)
    except DataError:
        raise
    # Pillow's decoders report a corrupt or truncated file with whatever their parsing hit
    # (OSError, SyntaxError, ValueError, struct.error, EOFError, DecompressionBombError...).
    except Exception as error:
        raise DataError(f"{folder}: the image '{name}' cannot be decoded ({error}).") from None
    return pixels.reshape(shape[1], shape[2], shape[0]).transpose(2, 0, 1)


def _check_pixel_count(folder: Path, name: str, shape: tuple[int, ...]) -> None:
    """Refuse a header declaring more pixels than the file's bytes can encode. Pillow fills
    the rows missing from a PNG's data with zeros, so a corrupt 100-byte file could become
    hundreds of megabytes of pixels (below Pillow's own decompression-bomb limit)."""
    size = (folder / name).stat().st_size
    if shape[1] * shape[2] > _PIXELS_PER_BYTE * size:
        raise DataError(f"{folder}: the image '{name}' declares {_size(shape)}, more pixels than its {size} bytes "
                        f"can hold; it is corrupt.")


def _size(shape: tuple[int, ...]) -> str:
    channels, height, width = shape
    return f"{width}x{height} with {channels} channel{'s' if channels > 1 else ''}"
