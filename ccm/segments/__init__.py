"""Segments and computed customer fields (README, "Rule language")."""
from ccm.segments.computed import RefreshResult, Thresholds, refresh_computed
from ccm.segments.membership import segment_clause, segment_names
from ccm.segments.service import (
    Refreshed, Saved, SegmentError, describe, get_segment, list_segments, refresh, refresh_segment, save_segment,
)

__all__ = [
    "RefreshResult", "Refreshed", "Saved", "SegmentError", "Thresholds", "describe", "get_segment", "list_segments",
    "refresh", "refresh_computed", "refresh_segment", "save_segment", "segment_clause", "segment_names",
]
