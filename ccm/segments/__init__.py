"""Segments and computed customer fields (README, "Rule language")."""
from ccm.segments.background import Refreshing, refresh_state, start_refresh, wait_refresh
from ccm.segments.computed import RefreshResult, Thresholds, refresh_computed
from ccm.segments.live import LiveCount, live_count
from ccm.segments.membership import segment_clause, segment_names
from ccm.segments.pyramid import audience_overview
from ccm.segments.service import (
    Refreshed, Saved, SegmentError, delete_segment, describe, get_segment, list_segments, refresh, refresh_segment, save_segment,
)

__all__ = [
    "Refreshing", "refresh_state", "start_refresh", "wait_refresh",
    "LiveCount", "RefreshResult", "Refreshed", "Saved", "SegmentError", "Thresholds", "delete_segment", "describe", "get_segment", "list_segments",
    "audience_overview", "live_count",
    "refresh", "refresh_computed", "refresh_segment", "save_segment", "segment_clause", "segment_names",
]
