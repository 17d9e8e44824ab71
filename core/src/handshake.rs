//! Handshake (placeholder).
