//! Scale-out tests: Consul registration and discovery against an HTTP double of the agent,
//! balancing across several real instances with one killed, and the real nginx in front of two
//! interview-service processes.
//!
//! `scripts/test.sh` runs this binary with the fault tests, one test at a time: they start
//! processes and time health checks, which a loaded 2-core machine would blur.

mod balancing;
mod consul_double;
mod nginx;
mod registration;
