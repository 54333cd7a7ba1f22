#!/bin/sh
# Remove from a virtual environment what nothing reads at run time. Runs in the image's builder
# stages only (they have binutils; the runtime images never do), after each `uv sync`:
#   trim-venv.sh /app/.venv
# `uv sync` does not put removed files back: it checks each distribution's metadata, not its
# files (*.dist-info/RECORD stays, listing them).
set -eu
venv=${1:?usage: trim-venv.sh VENV}
site="$venv/lib/python3.11/site-packages"

# The packages' own test suites (pandas 46 MB, scipy ~25 MB, numpy ~10 MB; onnx's backend
# conformance tests and their models, 18 MB; joblib's).
find "$site" -mindepth 2 -depth -type d -name tests -exec rm -rf {} +
rm -rf "$site/onnx/backend/test" "$site/joblib/test"

# Modules that no `mlcontainer` command imports (checked in the built image: train with every
# candidate, predict and serve on both runtimes, models, datasets, an error; tests/container
# runs them too). Only rich's syntax highlighting, tracebacks and Markdown (never used: the CLI
# draws tables and progress bars) import pygments and markdown-it; nothing but onnxruntime's
# quantization tools imports onnx.reference. (prettytable and wcwidth stay: `train` writes the
# model card with skops.card, which imports them.) Their metadata stays, so `uv sync` does not
# reinstall them. 20 MB.
rm -rf "$site/pygments" "$site/markdown_it" "$site/mdurl" \
    "$site/onnx/reference" "$venv/bin/pygmentize" "$venv/bin/markdown-it"

# What only compilers and build tools read: C, C++ and Cython sources, headers, type stubs,
# Cython and Meson templates, static libraries. (Not numpy's f2py: scipy's array API layer
# runs `from numpy import *`, which imports it.)
find "$site" -type f \( -name '*.c' -o -name '*.cc' -o -name '*.cpp' -o -name '*.h' \
    -o -name '*.hpp' -o -name '*.pyx' -o -name '*.pxd' -o -name '*.pxi' -o -name '*.pyi' \
    -o -name '*.tp' -o -name '*.a' -o -name meson.build \) -delete

# onnxruntime's offline tools (model conversion, quantization, transformer optimisation), and
# its C API library for native programs: the Python binding (onnxruntime_pybind11_state)
# carries the runtime itself and never loads libonnxruntime.so (35 MB).
rm -rf "$site/onnxruntime/tools" "$site/onnxruntime/quantization" \
    "$site/onnxruntime/transformers" "$site"/onnxruntime/capi/libonnxruntime.so.*

# Symbol tables and debug information of shared libraries (ml_dtypes alone carries 23 MB of
# DWARF). Not the libraries auditwheel vendored into *.libs folders: it rewrote them with
# patchelf, and stripping those makes them unloadable ("ELF load command address/offset not
# page-aligned").
find "$site" -type f -name '*.so*' -not -path '*.libs/*' -exec strip --strip-unneeded {} +

# The same libraries vendored by both numpy and scipy (libgfortran, libquadmath): one file.
for lib in "$site"/scipy.libs/*; do
    twin="$site/numpy.libs/${lib##*/}"
    if [ -f "$twin" ] && cmp -s "$lib" "$twin"; then ln -f "$twin" "$lib"; fi
done

# Every shared library left must still load (a bad strip fails the build, not a request).
# os._exit: extension modules loaded as plain libraries were never initialised, and the C++
# static destructors of some (matplotlib's, kiwisolver's pybind11 ones) abort Python's
# finalisation ("PyThreadState_Get: the GIL is released"); loading them is the whole check.
find "$site" -type f -name '*.so*' | "$venv/bin/python" -c '
import ctypes, os, sys
for path in sys.stdin.read().splitlines():
    ctypes.CDLL(path)
sys.stdout.flush()
os._exit(0)
'
