"""Helpers for the engine tests: a list of flat JSON spans as a corpus, through the real ingest path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nectar.corpus.ingest import ingest_paths
from nectar.corpus.layout import Corpus


def corpus_from_spans(spans: list[dict[str, Any]], tmp: Path, name: str = "c") -> Corpus:
    src = tmp / f"{name}.jsonl"
    src.write_text("".join(json.dumps(s) + "\n" for s in spans))
    ingest_paths([str(src)], tmp / name)
    return Corpus.open(tmp / name)
