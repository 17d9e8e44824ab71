//! Masking (placeholder).
