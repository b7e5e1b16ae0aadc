//! A line of a locale pack's sentence as the layout hands it to the painter (the pack's runs,
//! the box its ink needs, its placeholders' values): the type `words.rs` makes and `column.rs`
//! stacks, apart from both so neither imports the other's.

use super::text::Face;
use embedded_graphics::prelude::Size;

/// A line of a locale pack's sentence, ready to draw: the pack's pre-shaped runs, in visual
/// order, and the values of the placeholders on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapedLine {
    pub line: crate::locale::Line,
    /// The pack's size the line is drawn in.
    pub tier: crate::locale::Tier,
    /// From the top of the line box to the baseline, unscaled.
    pub ascent: u32,
    /// The line box, unscaled.
    pub height: u32,
    /// Integer pixel scale.
    pub scale: u32,
    /// Titles: emboldened (the packs carry one weight).
    pub bold: bool,
    /// Ink left of the line's first advance (a glyph's overhang), unscaled: the line is drawn
    /// this far right inside its box.
    pub left: u32,
    /// Ink right of its last advance (an overhang, emboldening), unscaled.
    pub right: u32,
    /// What each placeholder on the line draws.
    pub values: Vec<Value>,
}

impl ShapedLine {
    /// The line box, scaled: the advances and the ink beyond them on either side.
    pub fn size(&self) -> Size {
        Size::new(self.box_width() * self.scale, self.height * self.scale)
    }

    /// The box's width, unscaled.
    pub fn box_width(&self) -> u32 {
        self.left + self.line.width + self.right
    }
}

/// A placeholder's value in a [`ShapedLine`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    /// The placeholder's name (`name`, `minutes`, …).
    pub slot: String,
    /// Already sanitised.
    pub text: String,
    /// The u8g2 face that draws it (unscaled: the line's scale applies), or `None`: the pack's
    /// own letters.
    pub font: Option<Face>,
}
