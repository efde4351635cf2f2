"""The run index: every run folder, queryable (``alfred runs list|show|best|rebuild``)."""

from alfred.runs._index import (
    COLUMNS,
    INDEX_NAME,
    METRIC_COLUMNS,
    IndexSync,
    RunIndex,
    parse_filter,
    read_run,
)

__all__ = ["COLUMNS", "INDEX_NAME", "METRIC_COLUMNS", "IndexSync", "RunIndex",
           "parse_filter", "read_run"]
