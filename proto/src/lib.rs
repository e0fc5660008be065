//! Generated code for the `isac.v1` wire contract. See `isac/v1/isac.proto`.
#![allow(clippy::all)]

pub mod v1 {
    tonic::include_proto!("isac.v1");
}
