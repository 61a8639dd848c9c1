//! Canonical, family-independent types. Families and providers convert to and from these.

mod usage;

pub use usage::Usage;
