//! Fault tests with real processes: a service killed and restarted in the middle of an interview,
//! the broker restarted under load, a worker killed before it acknowledges.
//!
//! These run on their own (`scripts/test.sh` runs this binary after the rest, one test at a time):
//! they kill processes, load the CPU and restart the machine's RabbitMQ.

mod broker;
mod erasure;
mod outage;
