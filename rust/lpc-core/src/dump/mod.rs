//! Stack-dump parsers: every format a live-patch engineer has, into one columnar model.
