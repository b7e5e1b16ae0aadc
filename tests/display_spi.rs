//! The SPI drivers against recording fakes of the embedded-hal 1.0 SPI and GPIO traits: the
//! reset and init sequence, every write within spidev's 4096-byte limit, pixel data that —
//! replayed into a model of the controller's memory — decodes to the same QR, and a countdown
//! tick that sends only the countdown's window.
#![cfg(feature = "spi")]

mod common;

use common::decode_qrs;
use std::cell::RefCell;
use std::convert::Infallible;
use std::rc::Rc;
use std::time::Duration;

use devauth::cli::RenderState;
use devauth::commands::render::sample_view;
use devauth::config::board_display;
use devauth::screen::spi::{ColorPanelScreen, MAX_TRANSFER, OledScreen, PanelSettings};
use devauth::screen::{Screen, View};
use embedded_hal::spi::{ErrorType, Operation, SpiDevice};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    /// A write, with the D/C level at the time (false = command).
    Write {
        data: bool,
        bytes: Vec<u8>,
    },
    Pin {
        name: &'static str,
        high: bool,
    },
    DelayNs(u32),
}

#[derive(Default)]
struct Bus {
    events: Vec<Event>,
    dc_high: bool,
}

type Shared = Rc<RefCell<Bus>>;

struct FakeSpi(Shared);
struct FakePin(Shared, &'static str);
struct FakeDelay(Shared);

impl ErrorType for FakeSpi {
    type Error = Infallible;
}

impl SpiDevice for FakeSpi {
    fn transaction(&mut self, ops: &mut [Operation<'_, u8>]) -> Result<(), Infallible> {
        let mut bus = self.0.borrow_mut();
        for op in ops {
            match op {
                Operation::Write(b) => {
                    let data = bus.dc_high;
                    bus.events.push(Event::Write {
                        data,
                        bytes: b.to_vec(),
                    });
                }
                other => panic!("unexpected SPI operation {other:?}"),
            }
        }
        Ok(())
    }
}

impl embedded_hal::digital::ErrorType for FakePin {
    type Error = Infallible;
}

impl embedded_hal::digital::OutputPin for FakePin {
    fn set_low(&mut self) -> Result<(), Infallible> {
        let mut bus = self.0.borrow_mut();
        if self.1 == "dc" {
            bus.dc_high = false;
        } else {
            bus.events.push(Event::Pin {
                name: self.1,
                high: false,
            });
        }
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        let mut bus = self.0.borrow_mut();
        if self.1 == "dc" {
            bus.dc_high = true;
        } else {
            bus.events.push(Event::Pin {
                name: self.1,
                high: true,
            });
        }
        Ok(())
    }
}

impl embedded_hal::delay::DelayNs for FakeDelay {
    fn delay_ns(&mut self, ns: u32) {
        self.0.borrow_mut().events.push(Event::DelayNs(ns));
    }
}

/// Commands (D/C low) with the data bytes that follow them.
fn commands(events: &[Event]) -> Vec<(u8, Vec<u8>)> {
    let mut out: Vec<(u8, Vec<u8>)> = Vec::new();
    for e in events {
        if let Event::Write { data, bytes } = e {
            if *data {
                if let Some(last) = out.last_mut() {
                    last.1.extend_from_slice(bytes);
                }
            } else {
                for b in bytes {
                    out.push((*b, Vec::new()));
                }
            }
        }
    }
    out
}

fn assert_chunked(events: &[Event]) {
    for e in events {
        if let Event::Write { bytes, .. } = e {
            assert!(bytes.len() <= MAX_TRANSFER, "a {}-byte write", bytes.len());
        }
    }
}

fn decode(w: usize, h: usize, luma: impl Fn(usize, usize) -> u8) -> Vec<String> {
    decode_qrs(w as u32, h as u32, |x, y| luma(x as usize, y as usize))
}

/// A model of a MIPI DCS controller's memory: CASET/RASET windows and RAMWR data, RGB565
/// big-endian, 240×320.
struct Gram {
    mem: Vec<u16>,
    /// Every window written to (x0, y0, x1, y1), in controller coordinates.
    windows: Vec<(u16, u16, u16, u16)>,
}

impl Gram {
    fn replay(&mut self, cmds: &[(u8, Vec<u8>)]) {
        let (mut xs, mut ys) = ((0u16, 0u16), (0u16, 0u16));
        let be = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
        for (cmd, args) in cmds {
            match cmd {
                0x2a => xs = (be(&args[0..2]), be(&args[2..4])),
                0x2b => ys = (be(&args[0..2]), be(&args[2..4])),
                0x2c => {
                    self.windows.push((xs.0, ys.0, xs.1, ys.1));
                    let w = (xs.1 - xs.0 + 1) as usize;
                    for (i, px) in args.chunks(2).enumerate() {
                        let x = xs.0 as usize + i % w;
                        let y = ys.0 as usize + i / w;
                        self.mem[y * 240 + x] = be(px);
                    }
                }
                _ => {}
            }
        }
    }

    fn luma(&self, x: usize, y: usize) -> u8 {
        let p = self.mem[y * 240 + x];
        let (r, g, b) = ((p >> 11) << 3, ((p >> 5) & 0x3f) << 2, (p & 0x1f) << 3);
        ((r + g + b) / 3) as u8
    }
}

fn settle(view: &mut View, secs: u64) {
    if let View::WaitingForUser(c) = view {
        c.remaining = Duration::from_secs(secs);
    }
}

#[test]
fn st7789_init_pixels_and_ticks() {
    let d = board_display("pi-st7789-240x240", None).unwrap();
    let bus: Shared = Rc::default();
    let mut screen = ColorPanelScreen::new(
        mipidsi::models::ST7789,
        FakeSpi(bus.clone()),
        FakePin(bus.clone(), "dc"),
        Some(FakePin(bus.clone(), "rst")),
        &mut FakeDelay(bus.clone()),
        PanelSettings::from_config(&d).unwrap(),
    )
    .unwrap();
    let init = std::mem::take(&mut bus.borrow_mut().events);
    // Hardware reset pulse first.
    assert_eq!(
        init.iter()
            .filter(|e| matches!(e, Event::Pin { name: "rst", .. }))
            .cloned()
            .collect::<Vec<_>>(),
        vec![
            Event::Pin {
                name: "rst",
                high: false
            },
            Event::Pin {
                name: "rst",
                high: true
            }
        ]
    );
    let cmds: Vec<u8> = commands(&init).iter().map(|(c, _)| *c).collect();
    // Sleep out, memory access control, 16-bit colour, inversion on (IPS), display on.
    for (want, after) in [(0x11u8, 0usize), (0x36, 0), (0x3a, 0), (0x21, 0), (0x29, 0)] {
        assert!(
            cmds.iter().skip(after).any(|c| *c == want),
            "0x{want:02x} not in {cmds:02x?}"
        );
    }
    let colmod = commands(&init)
        .into_iter()
        .find(|(c, _)| *c == 0x3a)
        .unwrap();
    assert_eq!(colmod.1, vec![0x55], "RGB565");
    assert!(cmds.iter().position(|c| *c == 0x29) > cmds.iter().position(|c| *c == 0x11));

    let mut view = sample_view(RenderState::Code);
    settle(&mut view, 760);
    screen.show(&view).unwrap();
    let first = std::mem::take(&mut bus.borrow_mut().events);
    assert_chunked(&first);
    let mut gram = Gram {
        mem: vec![0; 240 * 320],
        windows: Vec::new(),
    };
    gram.replay(&commands(&first));
    assert_eq!(gram.windows, vec![(0, 0, 239, 239)], "one full window");
    let View::WaitingForUser(c) = &view else {
        unreachable!()
    };
    let payload = c.qr_payload.clone();
    assert_eq!(
        decode(240, 240, |x, y| gram.luma(x, y)),
        vec![payload.clone()]
    );

    // A tick: one small window, the countdown's, not overlapping the QR.
    settle(&mut view, 759);
    screen.show(&view).unwrap();
    let tick = std::mem::take(&mut bus.borrow_mut().events);
    assert_chunked(&tick);
    gram.windows.clear();
    gram.replay(&commands(&tick));
    let l = screen.layout().unwrap();
    let t = l.ticker.clone().unwrap().rect;
    let (o, q) = l.qr().unwrap();
    assert_eq!(gram.windows.len(), 1);
    let (x0, y0, x1, y1) = gram.windows[0];
    assert!(i32::from(y0) >= t.top_left.y && i32::from(y1) < t.top_left.y + t.size.height as i32);
    assert!(
        i32::from(y0) >= o.y + q.side() as i32,
        "tick window {x0},{y0}..{x1},{y1} overlaps the QR"
    );
    assert_eq!(decode(240, 240, |x, y| gram.luma(x, y)), vec![payload]);
    // Same second: nothing sent.
    screen.show(&view).unwrap();
    assert!(bus.borrow().events.is_empty());
}

#[test]
fn ili9341_rotated_to_landscape_decodes() {
    let d = board_display("pi-ili9341-320x240", None).unwrap();
    let bus: Shared = Rc::default();
    let mut screen = ColorPanelScreen::new(
        mipidsi::models::ILI9341Rgb565,
        FakeSpi(bus.clone()),
        FakePin(bus.clone(), "dc"),
        Some(FakePin(bus.clone(), "rst")),
        &mut FakeDelay(bus.clone()),
        PanelSettings::from_config(&d).unwrap(),
    )
    .unwrap();
    let init = std::mem::take(&mut bus.borrow_mut().events);
    let cmds: Vec<u8> = commands(&init).iter().map(|(c, _)| *c).collect();
    assert!(cmds.contains(&0x29) && cmds.contains(&0x3a), "{cmds:02x?}");
    let view = sample_view(RenderState::Retrying);
    screen.show(&view).unwrap();
    let events = std::mem::take(&mut bus.borrow_mut().events);
    assert_chunked(&events);
    let mut gram = Gram {
        mem: vec![0; 240 * 320],
        windows: Vec::new(),
    };
    gram.replay(&commands(&events));
    assert_eq!(gram.windows, vec![(0, 0, 239, 319)]);
    let View::Retrying { code: Some(c), .. } = &view else {
        unreachable!()
    };
    assert_eq!(
        decode(240, 320, |x, y| gram.luma(x, y)),
        vec![c.qr_payload.clone()]
    );
}

#[test]
fn ssd1306_init_pages_and_qr() {
    let d = board_display("pi-ssd1306-128x64", None).unwrap();
    let bus: Shared = Rc::default();
    let mut rst = FakePin(bus.clone(), "rst");
    let mut screen = OledScreen::new(
        FakeSpi(bus.clone()),
        FakePin(bus.clone(), "dc"),
        Some(&mut rst),
        &mut FakeDelay(bus.clone()),
        PanelSettings::from_config(&d).unwrap(),
    )
    .unwrap();
    let init = std::mem::take(&mut bus.borrow_mut().events);
    let pins: Vec<_> = init
        .iter()
        .filter(|e| matches!(e, Event::Pin { .. }))
        .cloned()
        .collect();
    assert_eq!(
        pins,
        vec![
            Event::Pin {
                name: "rst",
                high: true
            },
            Event::Pin {
                name: "rst",
                high: false
            },
            Event::Pin {
                name: "rst",
                high: true
            }
        ]
    );
    // Command bytes: display off first, charge pump on (0x8d 0x14), display on last.
    let bytes: Vec<u8> = init
        .iter()
        .filter_map(|e| match e {
            Event::Write { data: false, bytes } => Some(bytes.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(bytes.first(), Some(&0xae), "{bytes:02x?}");
    assert_eq!(bytes.last(), Some(&0xaf), "{bytes:02x?}");
    assert!(bytes.windows(2).any(|w| w == [0x8d, 0x14]), "{bytes:02x?}");

    let mut view = sample_view(RenderState::Code);
    settle(&mut view, 760);
    screen.show(&view).unwrap();
    let events = std::mem::take(&mut bus.borrow_mut().events);
    assert_chunked(&events);
    // Horizontal addressing: the data fills columns, then pages.
    let mut mem = vec![0u8; 128 * 8];
    let data: Vec<u8> = events
        .iter()
        .filter_map(|e| match e {
            Event::Write { data: true, bytes } => Some(bytes.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(data.len(), 1024, "one full frame");
    mem.copy_from_slice(&data);
    let lit = |x: usize, y: usize| mem[(y / 8) * 128 + x] & (1 << (y % 8)) != 0;
    let found = decode(
        128 * 4,
        64 * 4,
        |x, y| if lit(x / 4, y / 4) { 255 } else { 0 },
    );
    let View::WaitingForUser(c) = &view else {
        unreachable!()
    };
    assert_eq!(found, vec![c.verification_uri.clone()]);
    drop(found);
    // Tick: fewer bytes than a frame.
    settle(&mut view, 759);
    screen.show(&view).unwrap();
    let tick: usize = bus
        .borrow()
        .events
        .iter()
        .map(|e| match e {
            Event::Write { data: true, bytes } => bytes.len(),
            _ => 0,
        })
        .sum();
    assert!(tick > 0 && tick < 1024 / 2, "tick sent {tick} bytes");
}
