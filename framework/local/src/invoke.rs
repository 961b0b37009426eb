//! `modelstage invoke` (being written).
