//! The end of the pipeline: render results for people (tables) and programs (JSON/YAML).

pub mod annotate;
pub mod paint;
pub mod render;
