//! `modelstage transform` (being written).
