//! Stacking: a column of pieces placed top to bottom, centred vertically in an area.

use embedded_graphics::prelude::{Point, Size};
use embedded_graphics::primitives::Rectangle;

use super::text::{line_height, split_code, width};
use super::{Align, Item, Layout, Role, Text, Ticker, Type};
use crate::screen::fonts::FontId;
use crate::screen::qr::Fitted;

#[derive(Debug, Clone)]
pub(super) enum Piece {
    Lines {
        lines: Vec<String>,
        font: FontId,
        scale: u32,
        role: Role,
        code: bool,
    },
    Qr(Fitted),
    Ticker {
        font: FontId,
        scale: u32,
        bar: bool,
    },
    Gap(u32),
}

impl Piece {
    fn height(&self, ty: &Type) -> u32 {
        match self {
            Piece::Lines {
                lines, font, scale, ..
            } => {
                let n = u32::try_from(lines.len()).unwrap_or(u32::MAX);
                n.saturating_mul(line_height(*font, *scale))
            }
            Piece::Qr(code) => code.side(),
            Piece::Ticker { font, scale, bar } => {
                line_height(*font, *scale) + if *bar { ty.gap / 2 + ty.bar } else { 0 }
            }
            Piece::Gap(g) => *g,
        }
    }
}

pub(super) fn lines(lines: Vec<String>, font: FontId, role: Role) -> Piece {
    Piece::Lines {
        lines,
        font,
        scale: 1,
        role,
        code: false,
    }
}

/// The user code split over as many lines as `max` px needs, marked as the code's box.
pub(super) fn code_lines(code: &str, font: FontId, scale: u32, max: u32) -> Piece {
    Piece::Lines {
        lines: split_code(code, font, scale, max),
        font,
        scale,
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
                font,
                scale,
                role,
                code,
            } => {
                let lh = to_i32(line_height(font, scale));
                for (i, line) in lines.into_iter().enumerate() {
                    let origin = Point::new(
                        hx(width(font, scale, &line)),
                        y + lh * to_i32(u32::try_from(i).unwrap_or(0)),
                    );
                    let t = Text {
                        origin,
                        text: line,
                        font,
                        scale,
                        role,
                    };
                    if code {
                        out.code.push(t.rect());
                    }
                    out.items.push(Item::Text(t));
                }
            }
            Piece::Qr(code) => {
                let origin = Point::new(hx(code.side()), y);
                out.items.push(Item::Qr { origin, code });
            }
            Piece::Ticker { font, scale, bar } => {
                let rect = Rectangle::new(Point::new(x0, y), Size::new(w, h));
                let bar = bar.then(|| {
                    Rectangle::new(Point::new(x0, y + to_i32(h - ty.bar)), Size::new(w, ty.bar))
                });
                out.ticker = Some(Ticker {
                    rect,
                    text_y: y,
                    font,
                    scale,
                    align: if center { Align::Center } else { Align::Left },
                    bar,
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
