//! UTF-8 (placeholder).
