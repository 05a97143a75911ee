"""Section hashes: what lets an open page update only the sections whose data changed.

Every ``<section id="…">`` of a rendered page (sections never nest) gets ``data-h``, the first 10
hex digits of the SHA-256 of its HTML; ``version.json`` lists them per section. The page compares
them with its own and swaps only the sections that differ (``dashboard.js``).
"""
from __future__ import annotations

import hashlib
import re

_SECTION = re.compile(r'<section id="([^"]+)"')


def hash_sections(html: str) -> tuple[str, dict[str, str]]:
    """Return `html` with ``data-h="<hash>"`` on each section, and ``{section id: hash}`` in page order.

    Raises
    ------
    ValueError
        If a section is not closed, or an id appears twice (the page could not be updated by id).
    """
    out, hashes, pos, last_close = [], {}, 0, 0
    for m in _SECTION.finditer(html):
        if m.start() < last_close:
            raise ValueError(f"section {m.group(1)!r} starts inside another section")
        end = html.find("</section>", m.end())
        if end < 0:
            raise ValueError(f"section {m.group(1)!r} is not closed")
        sid = m.group(1)
        if sid in hashes:
            raise ValueError(f"section id {sid!r} appears twice")
        h = hashlib.sha256(html[m.start():end].encode("utf-8")).hexdigest()[:10]
        hashes[sid] = h
        last_close = end
        out.append(html[pos:m.end()])
        out.append(f' data-h="{h}"')
        pos = m.end()
    out.append(html[pos:])
    return "".join(out), hashes
