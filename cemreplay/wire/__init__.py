"""The wire format: encode event tables into batches and decode batches into event tables."""

from cemreplay.wire.decode import (
    DecodeReport,
    PackedBatches,
    Quarantined,
    decode,
    decode_report,
)
from cemreplay.wire.dictionary import Dictionary, learn_dictionary, string_counts
from cemreplay.wire.encode import encode
from cemreplay.wire.rrweb import read_rrweb

__all__ = [
    "DecodeReport",
    "Dictionary",
    "PackedBatches",
    "Quarantined",
    "decode",
    "decode_report",
    "encode",
    "learn_dictionary",
    "read_rrweb",
    "string_counts",
]
