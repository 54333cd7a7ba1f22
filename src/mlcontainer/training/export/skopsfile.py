"""Write a fitted pipeline as a skops file whose bytes depend only on the pipeline.

``skops.io.dumps`` names each array file and each memo entry after the ``id()`` of the
object in this process, and stamps the zip entries with the current time: two identical
fits give different bytes (and different hashes in the manifest). Here the ids are renumbered
in their order of appearance in ``schema.json`` (the same object keeps the same number, so
shared references stay shared), the arrays are renamed to match, and every entry gets the
zip format's earliest date. What loads is the same pipeline.
"""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

SCHEMA = "schema.json"
#: The earliest date a zip entry can hold (the format counts years from 1980).
EPOCH = (1980, 1, 1, 0, 0, 0)
_ARRAY = re.compile(r'"(\d+\.npy)"')
_MEMO = re.compile(r'"__id__": (\d+)')


def dumps(pipeline: Any) -> bytes:
    """The pipeline as skops bytes, the same for the same fitted pipeline in any process."""
    import skops.io

    return canonical(skops.io.dumps(pipeline))


def canonical(data: bytes) -> bytes:
    """Renumber a skops file's ids and arrays in order of appearance; fix its timestamps."""
    with zipfile.ZipFile(io.BytesIO(data)) as source:
        schema = source.read(SCHEMA).decode()
        arrays = [i.filename for i in source.infolist() if i.filename != SCHEMA]
        order = sorted(arrays, key=lambda name: schema.find(f'"{name}"'))
        renamed = {name: f"{k}.npy" for k, name in enumerate(order)}
        schema = _ARRAY.sub(lambda m: f'"{renamed.get(m.group(1), m.group(1))}"', schema)
        ids: dict[str, int] = {}
        schema = _MEMO.sub(lambda m: f'"__id__": {ids.setdefault(m.group(1), len(ids))}', schema)
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as target:
            for name in order:
                target.writestr(zipfile.ZipInfo(renamed[name], EPOCH), source.read(name))
            target.writestr(zipfile.ZipInfo(SCHEMA, EPOCH), schema)
    return out.getvalue()
