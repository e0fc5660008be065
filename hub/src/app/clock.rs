//! The hub's clock: [`isac_core::clock::Clock`], shared with the agent
//! (system by default, settable in tests). Everything in the hub that needs
//! "now" asks it; `isac-core`'s checks are handed the value.

pub use isac_core::clock::Clock;
