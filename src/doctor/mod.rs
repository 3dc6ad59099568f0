//! `doctor`: checks that each binding's wiring can work and is tight.

pub mod trust;
