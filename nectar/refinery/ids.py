"""Which id keys Refinery consumes from an event, and so hides from rules (SEMANTICS.md 2.1).

Transcribed from ``types/payload.go`` ``extractCriticalFieldsFromBytes`` (Refinery 3.2.2), which walks an event's
keys in their order::

    if !handled && valueType == msgp.StrType {
        _, ok := sliceContains(traceIdFieldNames, keyBytes)
        if p.MetaTraceID == "" && ok {
            p.MetaTraceID, remaining, err = msgp.ReadStringBytes(remaining)
            handled = true
        } else if _, ok := sliceContains(parentIdFieldNames, keyBytes); ok {
            ...
            if err == nil && parentId != "" {
                p.MetaRefineryRoot.Set(false)
            }
            handled = true
        }
    }

A handled key that a rule names is recorded in ``missingFields``, so ``Payload.Exists`` is false for it. Hence:

* only keys named in ``IDFieldNames`` (``TraceNames``, default ``trace.trace_id``, ``traceId``) and
  ``ParentIdFieldNames`` (``ParentNames``, default ``trace.parent_id``, ``parentId``) are consumed, and only when
  their value is a string: ``null``, numbers and bools stay ordinary fields. ``trace.span_id``/``spanId`` are
  never consumed;
* trace-id keys are consumed in key order while no non-empty trace id has been read: the first string one names
  the trace (an empty string is consumed and the search goes on); a later trace-id key stays an ordinary field;
* every string parent-id key is consumed, whatever its position; the span is a root unless one of them is a
  non-empty string.

This is the path Nectar models everywhere (libhoney ``/1/batch``, also how a span forwarded to the peer that owns
its trace arrives). On Refinery's OTLP receiver the same keys are consumed to find the trace and the root, but a
string ``trace.trace_id``/``trace.parent_id`` stays readable by rules (``processOTLPRequestBatchMsgp`` extracts
without sampling key fields), which is why Nectar's policy checks refuse conditions on these fields altogether.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from nectar.refinery.model import PARENT_ID_KEYS, TRACE_ID_KEYS


@dataclass(frozen=True, slots=True)
class IdFields:
    """Refinery's ``IDFieldNames`` (``TraceNames``) and ``ParentIdFieldNames`` (``ParentNames``); ``nectar.toml``
    ``[refinery] trace_id_fields`` / ``parent_id_fields``."""

    trace: tuple[str, ...] = TRACE_ID_KEYS
    parent: tuple[str, ...] = PARENT_ID_KEYS


DEFAULT_ID_FIELDS = IdFields()


class Consumed(NamedTuple):
    """The id keys Refinery consumes from one event.

    ``trace_key`` is the key whose string became ``MetaTraceID`` (its value may be ``""``: then the event is part
    of no trace); ``parent_key`` the first consumed parent-id key holding a non-empty string (None: a root);
    ``keys`` every consumed key, in key order of each kind (rules cannot see them).
    """

    trace_key: str | None
    parent_key: str | None
    keys: tuple[str, ...]


def _present(event: Mapping[str, Any], names: tuple[str, ...]) -> list[str]:
    """The keys of ``names`` that ``event`` has, in the event's key order."""
    present = []
    for k in names:
        if k in event:
            present.append(k)
    if len(present) > 1:
        position = {k: i for i, k in enumerate(event)}
        present.sort(key=position.__getitem__)
    return present


def consume_ids(event: Mapping[str, Any], ids: IdFields = DEFAULT_ID_FIELDS) -> Consumed:
    """Which keys of ``event`` (a mapping in the event's key order) Refinery consumes as trace and parent ids.

    The relative order of a trace-id key and a parent-id key never matters: a parent-id key is consumed whenever it
    holds a string and was not taken as the trace id, so only the order among trace-id keys (and among parent-id
    keys, for which one :attr:`Consumed.parent_key` names) is looked at.
    """
    keys: list[str] = []
    trace_key: str | None = None
    for k in _present(event, ids.trace):
        v = event[k]
        if isinstance(v, str):
            keys.append(k)
            trace_key = k
            if v:  # MetaTraceID is set: no later trace-id key is consumed
                break
    parent_key: str | None = None
    for k in _present(event, ids.parent):
        v = event[k]
        if isinstance(v, str) and k != trace_key and k not in keys:
            keys.append(k)
            if v and parent_key is None:
                parent_key = k
    return Consumed(trace_key, parent_key, tuple(keys))


__all__ = ["DEFAULT_ID_FIELDS", "Consumed", "IdFields", "consume_ids"]
