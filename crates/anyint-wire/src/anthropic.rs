//! The Anthropic Messages wire format (see `shared/protocols/anthropic.md`). Being written.
