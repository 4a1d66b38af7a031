//! End-to-end tests: the five services on free ports, driven as a client would, through the gateway.

mod access;
mod bad_input;
mod consent;
mod erasure;
mod gateway_edge;
mod instances;
mod interview;
mod ops;
mod restart;
mod rights;
mod tls;
mod traces;
