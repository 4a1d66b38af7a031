//! End-to-end tests: the five services on free ports, driven as a client would, through the gateway.

mod helpers;

mod bad_input;
mod interview;
mod restart;
mod gateway_edge;
