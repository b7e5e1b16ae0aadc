//! Text in the viewer's language and script: locale packs (sentences shaped, ordered and
//! rasterized at build time by `tools/localegen`), wrapping them into lines, drawing them.
//!
//! Owns the pack format and its checks (`pack.rs`), lines and bidi order (`line.rs`),
//! painting (`draw.rs`), where packs come from (`source.rs`: compiled in or installed files)
//! and which language to show (`choose.rs`). It does not decide where text goes on a screen (`screen::layout`).

pub mod choose;
mod draw;
mod line;
mod pack;
pub mod source;
#[cfg(test)]
mod tests;

pub use draw::{Blend, Ink};
pub use line::{Line, Part, Piece, SlotValue};
pub use pack::{MAX_PACK_BYTES, Pack, PackError, Tier};
