//! Test support: fake servers speaking the real wire formats, fixture builders, and helpers to run the
//! real binary. Mounted with `mod support;` by each integration test and by path from the benches.
#![allow(dead_code, unused_imports)] // each test binary uses a different subset

pub mod athena;
mod b64;
pub mod cli;
pub mod cloudtrail;
pub mod eks;
pub mod fixtures;
pub mod http_server;
pub mod iam;
pub mod kube_api;
pub mod s3;
pub mod sts;
pub mod trail;
pub mod world;
