//! The `spi` backend: small panels on userspace SPI (spidev) with GPIO lines from the GPIO
//! character device (data/command, reset, backlight): ST7789 and ILI9341 through mipidsi,
//! SSD1306 128×64 OLEDs through the ssd1306 crate.
//!
//! Owns driving the panels from a shadow canvas: after each paint only the changed rectangle is
//! sent (address window + pixel data), in SPI writes of at most [`MAX_TRANSFER`] bytes (spidev's
//! default `bufsiz`). The drivers are generic over the embedded-hal 1.0 traits, so the tests run
//! them against recording fakes; [`open`] builds the Linux ones (linux-embedded-hal).
//!
//! Rotation is done in software (the canvas), so the controller's scan direction, and with it
//! the board's offsets, never change. Chip select is left to the kernel (requesting the CS line
//! as a GPIO fails with EBUSY).

use embedded_graphics::pixelcolor::Rgb565;
use embedded_graphics::pixelcolor::raw::RawU16;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;
use embedded_hal::delay::DelayNs;
use embedded_hal::digital::OutputPin;
use embedded_hal::spi::SpiDevice;

use super::Screen;
use super::canvas::{Canvas, MonoCanvas, PixelFormat, Rotation};
use super::layout::Profile;
use super::painter::{Painter, PixelDevice};
use crate::screen::error::DisplayError;
use crate::screen::settings::{ColorOrder, Controller, DisplayConfig};

/// Largest single SPI write: spidev refuses messages above its `bufsiz` (4096 by default).
pub const MAX_TRANSFER: usize = 4096;

fn panel_err(what: &str, e: impl core::fmt::Debug) -> DisplayError {
    DisplayError::Unsupported(format!("spi panel: {what}: {e:?}"))
}

/// A mipidsi interface over an SPI device and a D/C line that owns its transfer buffer and
/// never sends more than [`MAX_TRANSFER`] bytes at once.
pub struct ChunkedSpi<SPI, DC> {
    spi: SPI,
    dc: DC,
    buf: Vec<u8>,
}

impl<SPI, DC> ChunkedSpi<SPI, DC> {
    pub fn new(spi: SPI, dc: DC) -> Self {
        ChunkedSpi {
            spi,
            dc,
            buf: Vec::with_capacity(MAX_TRANSFER),
        }
    }
}

/// An SPI or D/C failure, as text (the HAL error types differ per platform).
#[derive(Debug)]
pub struct BusError(pub String);

impl<SPI: SpiDevice, DC: OutputPin> ChunkedSpi<SPI, DC> {
    fn flush(&mut self) -> Result<(), BusError> {
        if !self.buf.is_empty() {
            self.spi
                .write(&self.buf)
                .map_err(|e| BusError(format!("spi write: {e:?}")))?;
            self.buf.clear();
        }
        Ok(())
    }

    fn push(&mut self, bytes: &[u8]) -> Result<(), BusError> {
        if self.buf.len() + bytes.len() > MAX_TRANSFER {
            self.flush()?;
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }
}

impl<SPI: SpiDevice, DC: OutputPin> mipidsi::interface::Interface for ChunkedSpi<SPI, DC> {
    type Word = u8;
    type Error = BusError;
    const KIND: mipidsi::interface::InterfaceKind = mipidsi::interface::InterfaceKind::Serial4Line;

    fn send_command(&mut self, command: u8, args: &[u8]) -> Result<(), Self::Error> {
        self.flush()?;
        self.dc
            .set_low()
            .map_err(|e| BusError(format!("d/c line: {e:?}")))?;
        self.spi
            .write(&[command])
            .map_err(|e| BusError(format!("spi write: {e:?}")))?;
        self.dc
            .set_high()
            .map_err(|e| BusError(format!("d/c line: {e:?}")))?;
        for chunk in args.chunks(MAX_TRANSFER) {
            self.spi
                .write(chunk)
                .map_err(|e| BusError(format!("spi write: {e:?}")))?;
        }
        Ok(())
    }

    fn send_pixels<const N: usize>(
        &mut self,
        pixels: impl IntoIterator<Item = [Self::Word; N]>,
    ) -> Result<(), Self::Error> {
        for p in pixels {
            self.push(&p)?;
        }
        self.flush()
    }

    fn send_repeated_pixel<const N: usize>(
        &mut self,
        pixel: [Self::Word; N],
        count: u32,
    ) -> Result<(), Self::Error> {
        for _ in 0..count {
            self.push(&pixel)?;
        }
        self.flush()
    }
}

/// A colour panel: an initialised mipidsi display plus the shadow canvas it mirrors.
pub struct ColorPanelScreen<SPI, DC, M, RST>
where
    SPI: SpiDevice,
    DC: OutputPin,
    M: mipidsi::models::Model<ColorFormat = Rgb565>,
    RST: OutputPin,
{
    display: mipidsi::Display<ChunkedSpi<SPI, DC>, M, RST>,
    canvas: Canvas,
    painter: Painter,
}

/// Panel settings the drivers need, from the board profile.
#[derive(Debug, Clone)]
pub struct PanelSettings {
    pub size: Size,
    pub offset: (u16, u16),
    pub color_order: ColorOrder,
    pub invert: bool,
    pub rotation: Rotation,
    pub profile: Profile,
}

impl PanelSettings {
    pub fn from_config(d: &DisplayConfig) -> Result<PanelSettings, DisplayError> {
        let size = d
            .size()
            .ok_or_else(|| DisplayError::Unsupported("spi panel: no width/height".into()))?;
        let off = |v: u32| u16::try_from(v).unwrap_or(u16::MAX);
        Ok(PanelSettings {
            size,
            offset: (off(d.spi.x_offset), off(d.spi.y_offset)),
            color_order: d.spi.color_order,
            invert: d.spi.invert_colors,
            rotation: d.rotation,
            profile: d.profile(),
        })
    }
}

impl<SPI, DC, M, RST> ColorPanelScreen<SPI, DC, M, RST>
where
    SPI: SpiDevice,
    DC: OutputPin,
    M: mipidsi::models::Model<ColorFormat = Rgb565>,
    RST: OutputPin,
{
    /// Resets (hardware reset when a line is given, else a software reset) and initialises the
    /// controller.
    pub fn new(
        model: M,
        spi: SPI,
        dc: DC,
        rst: Option<RST>,
        delay: &mut impl DelayNs,
        s: PanelSettings,
    ) -> Result<Self, DisplayError> {
        let (w, h) = (
            u16::try_from(s.size.width).unwrap_or(u16::MAX),
            u16::try_from(s.size.height).unwrap_or(u16::MAX),
        );
        let builder = mipidsi::Builder::new(model, ChunkedSpi::new(spi, dc))
            .display_size(w, h)
            .display_offset(s.offset.0, s.offset.1)
            .color_order(match s.color_order {
                ColorOrder::Rgb => mipidsi::options::ColorOrder::Rgb,
                ColorOrder::Bgr => mipidsi::options::ColorOrder::Bgr,
            })
            .invert_colors(if s.invert {
                mipidsi::options::ColorInversion::Inverted
            } else {
                mipidsi::options::ColorInversion::Normal
            });
        let display = match rst {
            Some(rst) => builder.reset_pin(rst).init(delay),
            None => {
                // Without a reset line mipidsi sends a software reset; the type still needs
                // an RST parameter, so this path is only for boards that have one.
                return Err(DisplayError::Unsupported(
                    "spi panel: st7789/ili9341 boards need reset_pin".into(),
                ));
            }
        }
        .map_err(|e| panel_err("init", e))?;
        let mut canvas = Canvas::new(s.size, 0, PixelFormat::RGB565, s.rotation);
        canvas.mark_all_dirty();
        Ok(ColorPanelScreen {
            display,
            canvas,
            painter: Painter::new(s.rotation.logical(s.size), s.profile),
        })
    }

    pub fn canvas(&self) -> &Canvas {
        &self.canvas
    }

    pub fn layout(&self) -> Option<&super::layout::Layout> {
        self.painter.layout()
    }

    fn push(&mut self) -> Result<(), DisplayError> {
        let Some(r) = self.canvas.take_dirty() else {
            return Ok(());
        };
        push_rect(&mut self.display, &self.canvas, r)
    }
}

fn push_rect<DI, M, RST>(
    display: &mut mipidsi::Display<DI, M, RST>,
    canvas: &Canvas,
    r: Rectangle,
) -> Result<(), DisplayError>
where
    DI: mipidsi::interface::Interface<Word = u8>,
    M: mipidsi::models::Model<ColorFormat = Rgb565>,
    RST: OutputPin,
{
    let Some(br) = r.bottom_right() else {
        return Ok(());
    };
    let c = |v: i32| u16::try_from(v).unwrap_or(0);
    let stride = canvas.stride();
    let bytes = canvas.bytes();
    let (x0, x1) = (r.top_left.x.max(0) as usize, br.x.max(0) as usize);
    let pixels = (r.top_left.y.max(0) as usize..=br.y.max(0) as usize).flat_map(move |y| {
        (x0..=x1).map(move |x| {
            let at = y * stride + x * 2;
            let word = bytes
                .get(at..at + 2)
                .and_then(|b| <[u8; 2]>::try_from(b).ok())
                .map_or(0, u16::from_le_bytes);
            Rgb565::from(RawU16::new(word))
        })
    });
    display
        .set_pixels(c(r.top_left.x), c(r.top_left.y), c(br.x), c(br.y), pixels)
        .map_err(|e| panel_err("sending pixels", e))
}

impl<SPI, DC, M, RST> PixelDevice for ColorPanelScreen<SPI, DC, M, RST>
where
    SPI: SpiDevice,
    DC: OutputPin,
    M: mipidsi::models::Model<ColorFormat = Rgb565>,
    RST: OutputPin,
{
    type Canvas = Canvas;

    fn painter_and_canvas(&mut self) -> (&mut Painter, &mut Canvas) {
        (&mut self.painter, &mut self.canvas)
    }

    fn push(&mut self) -> Result<(), DisplayError> {
        ColorPanelScreen::push(self)
    }
}

/// A 128×64 SSD1306 OLED.
pub struct OledScreen<SPI, DC>
where
    SPI: SpiDevice,
    DC: OutputPin,
{
    display: ssd1306::Ssd1306<
        display_interface_spi::SPIInterface<SPI, DC>,
        ssd1306::size::DisplaySize128x64,
        ssd1306::mode::BasicMode,
    >,
    canvas: MonoCanvas,
    painter: Painter,
}

impl<SPI, DC> OledScreen<SPI, DC>
where
    SPI: SpiDevice,
    DC: OutputPin,
{
    pub fn new<RST: OutputPin>(
        spi: SPI,
        dc: DC,
        rst: Option<&mut RST>,
        delay: &mut impl DelayNs,
        s: PanelSettings,
    ) -> Result<Self, DisplayError> {
        use ssd1306::prelude::*;
        let mut display = ssd1306::Ssd1306::new(
            display_interface_spi::SPIInterface::new(spi, dc),
            DisplaySize128x64,
            DisplayRotation::Rotate0,
        );
        if let Some(rst) = rst {
            display
                .reset(rst, delay)
                .map_err(|e| panel_err("reset", e))?;
        }
        display
            .init_with_addr_mode(ssd1306::command::AddrMode::Horizontal)
            .map_err(|e| panel_err("init", e))?;
        let size = Size::new(128, 64);
        let mut canvas = MonoCanvas::new(size, s.rotation);
        canvas.mark_all_dirty();
        Ok(OledScreen {
            display,
            canvas,
            painter: Painter::new(s.rotation.logical(size), s.profile),
        })
    }

    pub fn canvas(&self) -> &MonoCanvas {
        &self.canvas
    }

    pub fn layout(&self) -> Option<&super::layout::Layout> {
        self.painter.layout()
    }

    fn push(&mut self) -> Result<(), DisplayError> {
        let Some(r) = self.canvas.take_dirty() else {
            return Ok(());
        };
        let Some(br) = r.bottom_right() else {
            return Ok(());
        };
        let width = self.canvas.physical_size().width as usize;
        let (x0, x1) = (r.top_left.x.max(0) as usize, br.x.max(0) as usize + 1);
        let (p0, p1) = (
            r.top_left.y.max(0) as usize / 8,
            br.y.max(0) as usize / 8 + 1,
        );
        let mut data = Vec::with_capacity((x1 - x0) * (p1 - p0));
        for page in p0..p1 {
            let row = page * width;
            data.extend_from_slice(self.canvas.bytes().get(row + x0..row + x1).unwrap_or(&[]));
        }
        let b = |v: usize| u8::try_from(v).unwrap_or(u8::MAX);
        self.display
            .set_draw_area((b(x0), b(p0 * 8)), (b(x1), b(p1 * 8)))
            .map_err(|e| panel_err("draw area", e))?;
        for chunk in data.chunks(MAX_TRANSFER) {
            self.display
                .draw(chunk)
                .map_err(|e| panel_err("sending pixels", e))?;
        }
        Ok(())
    }
}

impl<SPI, DC> PixelDevice for OledScreen<SPI, DC>
where
    SPI: SpiDevice,
    DC: OutputPin,
{
    type Canvas = MonoCanvas;

    fn painter_and_canvas(&mut self) -> (&mut Painter, &mut MonoCanvas) {
        (&mut self.painter, &mut self.canvas)
    }

    fn push(&mut self) -> Result<(), DisplayError> {
        OledScreen::push(self)
    }
}

/// Opens the board's SPI device and GPIO lines and initialises the panel.
pub fn open(d: &DisplayConfig) -> Result<Box<dyn Screen>, DisplayError> {
    use linux_embedded_hal::gpio_cdev::{Chip, LineRequestFlags};
    use linux_embedded_hal::spidev::{SpiModeFlags, SpidevOptions};
    use linux_embedded_hal::{CdevPin, Delay, SpidevDevice};

    let s = PanelSettings::from_config(d)?;
    let spi_name = d.spi.device.display().to_string();
    let mut spi = SpidevDevice::open(&d.spi.device)
        .map_err(|e| DisplayError::Unsupported(format!("spi {spi_name}: opening: {e}")))?;
    let mode = match d.spi.mode {
        1 => SpiModeFlags::SPI_MODE_1,
        2 => SpiModeFlags::SPI_MODE_2,
        3 => SpiModeFlags::SPI_MODE_3,
        _ => SpiModeFlags::SPI_MODE_0,
    };
    spi.configure(
        &SpidevOptions::new()
            .bits_per_word(8)
            .max_speed_hz(d.spi.speed_hz)
            .mode(mode)
            .build(),
    )
    .map_err(|e| DisplayError::Unsupported(format!("spi {spi_name}: configuring: {e}")))?;
    let chip_name = d.spi.gpio_chip.display().to_string();
    let mut chip = Chip::new(&d.spi.gpio_chip)
        .map_err(|e| DisplayError::Unsupported(format!("gpio {chip_name}: opening: {e}")))?;
    let mut line = |what: &str, offset: u32, high: bool| -> Result<CdevPin, DisplayError> {
        let fail = |e: &dyn core::fmt::Display| {
            DisplayError::Unsupported(format!("gpio {chip_name} line {offset} ({what}): {e}"))
        };
        let handle = chip
            .get_line(offset)
            .and_then(|l| l.request(LineRequestFlags::OUTPUT, u8::from(high), "devauth"))
            .map_err(|e| fail(&e))?;
        CdevPin::new(handle).map_err(|e| fail(&e))
    };
    let dc_pin = d
        .spi
        .dc_pin
        .ok_or_else(|| DisplayError::Unsupported("spi panel: no dc_pin".into()))?;
    let dc = line("d/c", dc_pin, false)?;
    let mut rst = d
        .spi
        .reset_pin
        .map(|p| line("reset", p, true))
        .transpose()?;
    if let Some(p) = d.spi.backlight_pin {
        // On for the life of the process (the line is released, and reset, at exit).
        let bl = line("backlight", p, !d.spi.backlight_active_low)?;
        std::mem::forget(bl);
    }
    let mut delay = Delay;
    match d.spi.controller {
        Some(Controller::Ssd1306) => Ok(Box::new(OledScreen::new(
            spi,
            dc,
            rst.as_mut(),
            &mut delay,
            s,
        )?)),
        Some(Controller::St7789) => Ok(Box::new(ColorPanelScreen::new(
            mipidsi::models::ST7789,
            spi,
            dc,
            rst,
            &mut delay,
            s,
        )?)),
        Some(Controller::Ili9341) => Ok(Box::new(ColorPanelScreen::new(
            mipidsi::models::ILI9341Rgb565,
            spi,
            dc,
            rst,
            &mut delay,
            s,
        )?)),
        None => Err(DisplayError::Unsupported("spi panel: no controller".into())),
    }
}
