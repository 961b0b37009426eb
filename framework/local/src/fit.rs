//! `modelstage fit`: a local training job (being written).
