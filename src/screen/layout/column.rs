//! Stacking: a column of pieces placed top to bottom, centred vertically in an area.

use embedded_graphics::prelude::{Point, Size};
use embedded_graphics::primitives::Rectangle;

use super::text::{Face, split_code, wrap};
use super::{Align, Item, Layout, Role, ShapedLine, Text, Ticker, Type};
use crate::screen::language::Language;
use crate::screen::qr::Fitted;

#[derive(Debug, Clone)]
pub(super) enum Piece {
    Lines {
        lines: Vec<String>,
        face: Face,
        role: Role,
        /// The user code's lines (recorded in [`Layout::code`]).
        code: bool,
    },
    /// Lines of the language's pack.
    Shaped {
        lines: Vec<ShapedLine>,
        role: Role,
    },
    Qr(Fitted),
    Ticker {
        face: Face,
        /// The height of its text line.
        text_h: u32,
        bar: bool,
        language: Language,
        mono: bool,
    },
    Gap(u32),
}

/// The distance from one line's top to the next one's: the line box plus a sixth of it, so
/// wrapped lines never touch.
pub(super) fn line_pitch(face: Face) -> u32 {
    pitch(face.height())
}

fn pitch(h: u32) -> u32 {
    h + (h / 6).max(1)
}

/// Height of `n` lines `h` high, a pitch apart.
fn lines_height(n: usize, h: u32) -> u32 {
    let n = u32::try_from(n).unwrap_or(u32::MAX);
    // The last line needs only its box, not the space under it.
    n.saturating_sub(1).saturating_mul(pitch(h)) + h * u32::from(n > 0)
}

/// The tallest line box of a paragraph of the pack (scaled): all its lines are this far apart.
fn shaped_height(lines: &[ShapedLine]) -> u32 {
    lines.iter().map(|l| l.size().height).max().unwrap_or(0)
}

impl Piece {
    fn height(&self, ty: &Type) -> u32 {
        match self {
            Piece::Lines { lines, face, .. } => lines_height(lines.len(), face.height()),
            Piece::Shaped { lines, .. } => lines_height(lines.len(), shaped_height(lines)),
            Piece::Qr(code) => code.side(),
            Piece::Ticker { text_h, bar, .. } => {
                text_h + if *bar { ty.gap / 2 + ty.bar } else { 0 }
            }
            Piece::Gap(g) => *g,
        }
    }

    /// Whether the piece is a paragraph of more lines than `max`.
    pub(super) fn lines_over(&self, max: usize) -> bool {
        match self {
            Piece::Lines { lines, .. } => lines.len() > max,
            Piece::Shaped { lines, .. } => lines.len() > max,
            _ => false,
        }
    }
}

/// A paragraph wrapped to `w` px.
pub(super) fn para(text: &str, face: Face, w: u32, role: Role) -> Piece {
    lines(wrap(text, face, w), face, role)
}

pub(super) fn lines(lines: Vec<String>, face: Face, role: Role) -> Piece {
    Piece::Lines {
        lines,
        face,
        role,
        code: false,
    }
}

/// The user code split over as many lines as `max` px needs, marked as the code's box.
pub(super) fn code_lines(code: &str, face: Face, max: u32) -> Piece {
    Piece::Lines {
        lines: split_code(code, face, max),
        face,
        role: Role::Code,
        code: true,
    }
}

/// Interleaves `gap` between pieces (a `Gap` already present replaces it).
pub(super) fn spaced(pieces: Vec<Piece>, gap: u32) -> Vec<Piece> {
    let mut out = Vec::with_capacity(pieces.len() * 2);
    for p in pieces {
        if !out.is_empty()
            && !matches!(p, Piece::Gap(_))
            && !matches!(out.last(), Some(Piece::Gap(_)))
        {
            out.push(Piece::Gap(gap));
        }
        out.push(p);
    }
    out
}

pub(super) fn column_height(pieces: &[Piece], ty: &Type) -> u32 {
    pieces.iter().map(|p| p.height(ty)).sum()
}

/// The widest line of `pieces` (QR and ticker included), to check them against a width.
pub(super) fn column_width(pieces: &[Piece]) -> u32 {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Lines { lines, face, .. } => {
                lines.iter().map(|l| face.width(l)).max().unwrap_or(0)
            }
            Piece::Shaped { lines, .. } => lines.iter().map(|l| l.size().width).max().unwrap_or(0),
            Piece::Qr(code) => code.side(),
            _ => 0,
        })
        .max()
        .unwrap_or(0)
}

/// Places `pieces` in `area` (`center`: each piece centred horizontally; the column is centred
/// vertically either way) and appends the results to `out`.
pub(super) fn place(
    pieces: Vec<Piece>,
    area: Rectangle,
    center: bool,
    ty: &Type,
    out: &mut Layout,
) {
    let total = column_height(&pieces, ty);
    let mut y = area.top_left.y + to_i32(area.size.height.saturating_sub(total) / 2);
    let x0 = area.top_left.x;
    let w = area.size.width;
    let hx = |pw: u32| {
        if center {
            x0 + to_i32(w.saturating_sub(pw) / 2)
        } else {
            x0
        }
    };
    for p in pieces {
        let h = p.height(ty);
        match p {
            Piece::Lines {
                lines,
                face,
                role,
                code,
            } => {
                let pitch = to_i32(line_pitch(face));
                for (i, line) in lines.into_iter().enumerate() {
                    let origin = Point::new(
                        hx(face.width(&line)),
                        y + pitch * to_i32(u32::try_from(i).unwrap_or(0)),
                    );
                    let t = Text {
                        origin,
                        text: line,
                        font: face.font,
                        scale: face.scale,
                        role,
                    };
                    if code {
                        out.code.push(t.rect());
                    }
                    out.items.push(Item::Text(t));
                }
            }
            Piece::Shaped { lines, role } => {
                let pitch = to_i32(pitch(shaped_height(&lines)));
                for (i, shaped) in lines.into_iter().enumerate() {
                    let origin = Point::new(
                        hx(shaped.size().width),
                        y + pitch * to_i32(u32::try_from(i).unwrap_or(0)),
                    );
                    out.items.push(Item::Shaped {
                        origin,
                        shaped,
                        role,
                    });
                }
            }
            Piece::Qr(code) => {
                let origin = Point::new(hx(code.side()), y);
                out.items.push(Item::Qr { origin, code });
            }
            Piece::Ticker {
                face,
                bar,
                language,
                mono,
                ..
            } => {
                let rect = Rectangle::new(Point::new(x0, y), Size::new(w, h));
                let bar = bar.then(|| {
                    Rectangle::new(Point::new(x0, y + to_i32(h - ty.bar)), Size::new(w, ty.bar))
                });
                out.ticker = Some(Ticker {
                    rect,
                    text_y: y,
                    font: face.font,
                    scale: face.scale,
                    align: if center { Align::Center } else { Align::Left },
                    bar,
                    language,
                    mono,
                    rtl: false,
                });
            }
            Piece::Gap(_) => {}
        }
        y += to_i32(h);
    }
}

pub(super) fn to_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}
