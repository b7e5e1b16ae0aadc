//! terminal backend (placeholder)
