"""The wire format: encode event tables into batches and decode batches into event tables."""

from cemreplay.wire.decode import DecodeReport, Quarantined, decode, decode_report
from cemreplay.wire.encode import encode

__all__ = ["DecodeReport", "Quarantined", "decode", "decode_report", "encode"]
