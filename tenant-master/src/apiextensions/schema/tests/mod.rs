//! Tests of the structural-schema engine, by area.

mod parse;
