//! The Gemini generateContent wire format (see `shared/protocols/gemini.md`). Being written.
