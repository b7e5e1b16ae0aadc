//! Line charts as PNG files, drawn with embedded-graphics on an RGB buffer and encoded with the
//! png crate (both already in devauth's dependency tree: nothing new is built for the plots).
//! Text uses u8g2's ASCII fonts.

use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{Line, PrimitiveStyle, Rectangle};
use u8g2_fonts::types::{FontColor, HorizontalAlignment, VerticalPosition};
use u8g2_fonts::{FontRenderer, fonts};

static LABEL: FontRenderer = FontRenderer::new::<fonts::u8g2_font_helvR10_tr>();
static TITLE: FontRenderer = FontRenderer::new::<fonts::u8g2_font_helvB12_tr>();

pub const BLUE: Rgb888 = Rgb888::new(31, 119, 180);
pub const ORANGE: Rgb888 = Rgb888::new(255, 127, 14);
const GRID: Rgb888 = Rgb888::new(225, 225, 225);
const AXIS: Rgb888 = Rgb888::new(60, 60, 60);
const SHADE: Rgb888 = Rgb888::new(250, 232, 232);
const LIMIT: Rgb888 = Rgb888::new(200, 40, 40);

pub struct Series {
    pub label: String,
    pub color: Rgb888,
    /// (x, y); drawn as a line through the points in order.
    pub points: Vec<(f64, f64)>,
}

pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x_range: (f64, f64),
    pub series: Vec<Series>,
    /// An x interval shaded behind the lines (the disturbance), with its label.
    pub shade: Option<(f64, f64, String)>,
    /// A horizontal line (the provider's limit), with its label, up to an x where it was lifted
    /// (`None`: across the whole chart).
    pub limit: Option<(f64, String, Option<f64>)>,
    /// Logarithmic y axis (decades); values below its floor are drawn at the floor.
    pub log_y: bool,
}

/// An RGB image that embedded-graphics draws on.
struct Image {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

impl Image {
    fn new(width: u32, height: u32) -> Image {
        Image {
            width,
            height,
            rgb: vec![255; width as usize * height as usize * 3],
        }
    }
}

impl OriginDimensions for Image {
    fn size(&self) -> Size {
        Size::new(self.width, self.height)
    }
}

impl DrawTarget for Image {
    type Color = Rgb888;
    type Error = core::convert::Infallible;

    fn draw_iter<I: IntoIterator<Item = Pixel<Rgb888>>>(
        &mut self,
        pixels: I,
    ) -> Result<(), Self::Error> {
        for Pixel(p, c) in pixels {
            if p.x < 0 || p.y < 0 || p.x >= self.width as i32 || p.y >= self.height as i32 {
                continue;
            }
            let i = (p.y as usize * self.width as usize + p.x as usize) * 3;
            if let Some(px) = self.rgb.get_mut(i..i + 3) {
                px.copy_from_slice(&[c.r(), c.g(), c.b()]);
            }
        }
        Ok(())
    }
}

/// Round tick steps: 1, 2, 5 × 10^k giving about `n` ticks over `span`.
fn tick_step(span: f64, n: f64) -> f64 {
    let raw = span / n;
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
}

fn fmt_tick(v: f64) -> String {
    let v = if v.abs() < 1e-9 { 0.0 } else { v };
    if v.abs() >= 1000.0 {
        format!("{}k", fmt_tick(v / 1000.0))
    } else if v.fract().abs() < 1e-9 {
        format!("{v:.0}")
    } else if (v * 10.0).fract().abs() < 1e-9 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Draws `chart` as a `width` × `height` PNG.
pub fn render(chart: &Chart, width: u32, height: u32) -> Result<Vec<u8>, String> {
    let mut img = Image::new(width, height);
    let (left, right, top, bottom) = (70i32, 20i32, 60i32, 50i32);
    let plot_w = width as i32 - left - right;
    let plot_h = height as i32 - top - bottom;
    let (x0, x1) = chart.x_range;
    let ys = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .chain(chart.limit.iter().map(|l| l.0));
    let y_max = ys.fold(0.0f64, f64::max).max(1e-3);
    let (y_lo, y_hi) = if chart.log_y {
        let hi = 10f64.powf(y_max.log10().ceil().max(0.0));
        (hi / 10f64.powi(((hi.log10() + 1.0).max(3.0)) as i32), hi)
    } else {
        let step = tick_step(y_max, 5.0);
        (0.0, (y_max / step).ceil() * step)
    };
    let px = |x: f64| left + ((x - x0) / (x1 - x0) * plot_w as f64).round() as i32;
    let py = |y: f64| {
        let f = if chart.log_y {
            (y.max(y_lo).log10() - y_lo.log10()) / (y_hi.log10() - y_lo.log10())
        } else {
            (y - y_lo) / (y_hi - y_lo)
        };
        top + plot_h - (f.clamp(0.0, 1.0) * plot_h as f64).round() as i32
    };
    let solid = |c: Rgb888, w: u32| PrimitiveStyle::with_stroke(c, w);
    let fill = PrimitiveStyle::with_fill;
    let text = |img: &mut Image,
                f: &FontRenderer,
                s: &str,
                at: Point,
                h: HorizontalAlignment,
                v: VerticalPosition,
                c: Rgb888| {
        let _ = f.render_aligned(s, at, v, h, FontColor::Transparent(c), img);
    };

    // The disturbance, behind everything.
    if let Some((a, b, label)) = &chart.shade {
        let (a, b) = (px(a.max(x0)), px(b.min(x1)));
        let _ = Rectangle::new(
            Point::new(a, top),
            Size::new((b - a).max(2) as u32, plot_h as u32),
        )
        .into_styled(fill(SHADE))
        .draw(&mut img);
        text(
            &mut img,
            &LABEL,
            label,
            Point::new(a + 4, top + 4),
            HorizontalAlignment::Left,
            VerticalPosition::Top,
            AXIS,
        );
    }
    // Grid and ticks.
    let x_step = tick_step(x1 - x0, 8.0);
    let mut x = (x0 / x_step).ceil() * x_step;
    while x <= x1 + 1e-9 {
        let p = px(x);
        let _ = Line::new(Point::new(p, top), Point::new(p, top + plot_h))
            .into_styled(solid(GRID, 1))
            .draw(&mut img);
        text(
            &mut img,
            &LABEL,
            &fmt_tick(x),
            Point::new(p, top + plot_h + 6),
            HorizontalAlignment::Center,
            VerticalPosition::Top,
            AXIS,
        );
        x += x_step;
    }
    let y_ticks: Vec<f64> = if chart.log_y {
        let mut v = Vec::new();
        let mut y = y_lo;
        while y <= y_hi * 1.0001 {
            v.push(y);
            y *= 10.0;
        }
        v
    } else {
        let step = tick_step(y_hi - y_lo, 5.0);
        (0..=((y_hi - y_lo) / step).round() as i32)
            .map(|i| y_lo + f64::from(i) * step)
            .collect()
    };
    for y in y_ticks {
        let p = py(y);
        let _ = Line::new(Point::new(left, p), Point::new(left + plot_w, p))
            .into_styled(solid(GRID, 1))
            .draw(&mut img);
        text(
            &mut img,
            &LABEL,
            &fmt_tick(y),
            Point::new(left - 6, p),
            HorizontalAlignment::Right,
            VerticalPosition::Center,
            AXIS,
        );
    }
    // The limit.
    if let Some((y, label, until)) = &chart.limit {
        let p = py(*y);
        let end = until.map_or(left + plot_w, |u| px(u).clamp(left, left + plot_w));
        let mut x = left;
        while x < end {
            let _ = Line::new(Point::new(x, p), Point::new((x + 6).min(end), p))
                .into_styled(solid(LIMIT, 1))
                .draw(&mut img);
            x += 10;
        }
        text(
            &mut img,
            &LABEL,
            label,
            Point::new(end - 4, p - 3),
            HorizontalAlignment::Right,
            VerticalPosition::Bottom,
            LIMIT,
        );
    }
    // The series, first ones underneath.
    for s in &chart.series {
        let pts: Vec<Point> = s
            .points
            .iter()
            .filter(|(x, _)| *x >= x0 && *x <= x1)
            .map(|&(x, y)| Point::new(px(x), py(y)))
            .collect();
        for w in pts.windows(2) {
            if let [a, b] = w {
                let _ = Line::new(*a, *b)
                    .into_styled(solid(s.color, 2))
                    .draw(&mut img);
            }
        }
    }
    // Axes, labels, title, legend.
    let _ = Rectangle::new(
        Point::new(left, top),
        Size::new(plot_w as u32, plot_h as u32),
    )
    .into_styled(solid(AXIS, 1))
    .draw(&mut img);
    text(
        &mut img,
        &TITLE,
        &chart.title,
        Point::new(left, 12),
        HorizontalAlignment::Left,
        VerticalPosition::Top,
        AXIS,
    );
    text(
        &mut img,
        &LABEL,
        &chart.x_label,
        Point::new(left + plot_w / 2, height as i32 - 8),
        HorizontalAlignment::Center,
        VerticalPosition::Bottom,
        AXIS,
    );
    text(
        &mut img,
        &LABEL,
        &chart.y_label,
        Point::new(8, top - 10),
        HorizontalAlignment::Left,
        VerticalPosition::Bottom,
        AXIS,
    );
    let mut lx = left + plot_w;
    for s in chart.series.iter().rev() {
        let w = LABEL
            .get_rendered_dimensions(s.label.as_str(), Point::zero(), VerticalPosition::Center)
            .ok()
            .and_then(|d| d.bounding_box)
            .map_or(60, |b| b.size.width as i32);
        lx -= w;
        text(
            &mut img,
            &LABEL,
            &s.label,
            Point::new(lx, top - 18),
            HorizontalAlignment::Left,
            VerticalPosition::Center,
            AXIS,
        );
        let _ = Line::new(Point::new(lx - 26, top - 18), Point::new(lx - 6, top - 18))
            .into_styled(solid(s.color, 3))
            .draw(&mut img);
        lx -= 40;
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::High);
    let mut writer = enc.write_header().map_err(|e| e.to_string())?;
    writer
        .write_image_data(&img.rgb)
        .map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_read_well() {
        let ticks: Vec<String> = [-0.0, 0.1, 0.25, 1.0, 20.0, 1000.0, 1500.0, 20_000.0]
            .into_iter()
            .map(fmt_tick)
            .collect();
        assert_eq!(ticks, ["0", "0.1", "0.25", "1", "20", "1k", "1.5k", "20k"]);
    }

    #[test]
    fn tick_steps_are_round() {
        assert_eq!(tick_step(100.0, 5.0), 20.0);
        assert_eq!(tick_step(180.0, 8.0), 50.0);
        assert_eq!(tick_step(0.7, 5.0), 0.2);
    }

    #[test]
    fn a_chart_is_a_png_with_both_lines_drawn() {
        let chart = Chart {
            title: "t".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            x_range: (0.0, 10.0),
            series: vec![
                Series {
                    label: "a".into(),
                    color: BLUE,
                    points: vec![(0.0, 1.0), (10.0, 100.0)],
                },
                Series {
                    label: "b".into(),
                    color: ORANGE,
                    points: vec![(0.0, 50.0), (10.0, 0.0)],
                },
            ],
            shade: Some((1.0, 2.0, "d".into())),
            limit: Some((30.0, "limit".into(), None)),
            log_y: true,
        };
        let png = render(&chart, 400, 300).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (400, 300));
        let has = |c: Rgb888| buf.chunks(3).any(|p| p == [c.r(), c.g(), c.b()]);
        assert!(has(BLUE) && has(ORANGE) && has(LIMIT) && has(SHADE));
    }
}
