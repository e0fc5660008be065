//! Prometheus metrics on a separate plain-HTTP listener (`--metrics-listen
//! ADDR`, off by default): counters and gauges kept in atomics, written in
//! the text exposition format (version 0.0.4) by hand.
//!
//! It has no authentication: bind it to loopback or a monitoring network.
//! It shows aggregate counts and member org ids with their ack lag, never
//! anything about an item (no ids, TLP or audience), so it cannot leak what
//! a member may not see.

//!
//! This module holds the counters (`Metrics`, in `HubShared`); `http`
//! holds the listener and the exposition text.

pub mod http;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The hub's counters. One per running hub (tests run several at once).
#[derive(Default)]
pub struct Metrics {
    publish_accepted: AtomicU64,
    /// Refused statements by gRPC status code name.
    publish_refused: Mutex<BTreeMap<&'static str, u64>>,
    deliveries: AtomicU64,
}

/// A status code's canonical name (`UNAVAILABLE`, ...), as a label value.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

impl Metrics {
    /// `n` statements accepted (stored, or recognised as already stored).
    pub fn accepted(&self, n: u64) {
        self.publish_accepted.fetch_add(n, Ordering::Relaxed);
    }

    /// `n` statements refused with `code`.
    pub fn refused(&self, code: tonic::Code, n: u64) {
        *self
            .publish_refused
            .lock()
            .expect("metrics lock")
            .entry(code_name(code))
            .or_default() += n;
    }

    /// One item sent on a subscription stream.
    pub fn delivered(&self) {
        self.deliveries.fetch_add(1, Ordering::Relaxed);
    }
}
