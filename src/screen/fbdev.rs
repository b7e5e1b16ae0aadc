//! The `framebuffer` backend: Linux fbdev (`/dev/fb0`), or a plain file laid out like one.
//!
//! Owns finding the geometry and pixel format (FBIOGET_VSCREENINFO / FBIOGET_FSCREENINFO, then
//! sysfs, then `[display]` overrides over either), mapping the device, and copying the
//! shadow canvas's changed rectangle into it: one copy per changed row, only the changed
//! columns, rows `line_length` bytes apart (padding honoured), at the panned origin
//! (`xoffset`/`yoffset`). The mapping is only ever written, never read: fbdev memory is often
//! uncached and slow to read. Alpha channels are written opaque (set-top boxes blend the OSD
//! layer over video, and alpha 0 would be invisible).
//!
//! Not done: page flipping or vsync (fbdev has no portable way; a tick touches a few rows).

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use embedded_graphics::prelude::Size;

use super::canvas::{Canvas, Field, PixelFormat};
use super::console::{Console, Visibility};
use super::devmem::Mapping;
use super::painter::{Painter, PixelDevice, Shown};
use crate::screen::error::DisplayError;
use crate::screen::settings::DisplayConfig;

// <linux/fb.h>
const FBIOGET_VSCREENINFO: u32 = 0x4600;
const FBIOGET_FSCREENINFO: u32 = 0x4602;

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct FbBitfield {
    offset: u32,
    length: u32,
    msb_right: u32,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct FbVarScreeninfo {
    xres: u32,
    yres: u32,
    xres_virtual: u32,
    yres_virtual: u32,
    xoffset: u32,
    yoffset: u32,
    bits_per_pixel: u32,
    grayscale: u32,
    red: FbBitfield,
    green: FbBitfield,
    blue: FbBitfield,
    transp: FbBitfield,
    nonstd: u32,
    activate: u32,
    height: u32,
    width: u32,
    accel_flags: u32,
    pixclock: u32,
    left_margin: u32,
    right_margin: u32,
    upper_margin: u32,
    lower_margin: u32,
    hsync_len: u32,
    vsync_len: u32,
    sync: u32,
    vmode: u32,
    rotate: u32,
    colorspace: u32,
    reserved: [u32; 4],
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct FbFixScreeninfo {
    id: [u8; 16],
    smem_start: libc::c_ulong,
    smem_len: u32,
    type_: u32,
    type_aux: u32,
    visual: u32,
    xpanstep: u16,
    ypanstep: u16,
    ywrapstep: u16,
    line_length: u32,
    mmio_start: libc::c_ulong,
    mmio_len: u32,
    accel: u32,
    capabilities: u16,
    reserved: [u16; 2],
}

/// What the device (or sysfs) says about itself; every field may be missing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probed {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub format: Option<PixelFormat>,
    /// Why the format was not usable, when the device described one.
    pub format_problem: Option<String>,
    pub stride: Option<u32>,
    pub xoffset: u32,
    pub yoffset: u32,
    /// Bytes of mappable memory.
    pub mem_len: Option<usize>,
}

fn field(b: FbBitfield) -> Field {
    Field {
        offset: u8::try_from(b.offset).unwrap_or(u8::MAX),
        length: u8::try_from(b.length).unwrap_or(u8::MAX),
    }
}

/// Asks the driver. `None` when `file` is not a framebuffer (ENOTTY on a plain file).
fn probe_ioctl(file: &File) -> Option<Probed> {
    let fd = file.as_raw_fd();
    let mut var = FbVarScreeninfo::default();
    let mut fix = FbFixScreeninfo::default();
    // SAFETY: both requests write exactly one struct of the type passed, which matches the
    // kernel's layout (<linux/fb.h>); the structs live for the whole call. The request number
    // is converted with `as _` because its parameter is c_ulong on glibc and c_int on musl.
    let ok = unsafe {
        libc::ioctl(
            fd,
            FBIOGET_VSCREENINFO as _,
            &mut var as *mut FbVarScreeninfo,
        ) == 0
            && libc::ioctl(
                fd,
                FBIOGET_FSCREENINFO as _,
                &mut fix as *mut FbFixScreeninfo,
            ) == 0
    };
    if !ok {
        return None;
    }
    let format = PixelFormat::from_bitfields(
        var.bits_per_pixel,
        field(var.red),
        field(var.green),
        field(var.blue),
        field(var.transp),
    );
    let format_problem = format.is_none().then(|| {
        format!(
            "{} bits per pixel (red {}/{}, green {}/{}, blue {}/{}) is not a format devauth can draw",
            var.bits_per_pixel,
            var.red.offset,
            var.red.length,
            var.green.offset,
            var.green.length,
            var.blue.offset,
            var.blue.length
        )
    });
    Some(Probed {
        width: Some(var.xres),
        height: Some(var.yres),
        format,
        format_problem,
        stride: Some(fix.line_length).filter(|l| *l > 0),
        xoffset: var.xoffset,
        yoffset: var.yoffset,
        mem_len: usize::try_from(fix.smem_len).ok().filter(|l| *l > 0),
    })
}

fn read_small(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    (text.len() < 256).then(|| text.trim().to_string())
}

/// sysfs fallback (`/sys/class/graphics/fbN/`): bits_per_pixel, stride and the virtual size.
/// The visible size is not there (virtual_size may be larger), so it is only used for the
/// memory bound; width and height then come from the config.
pub fn probe_sysfs(dir: &Path) -> Option<Probed> {
    let bpp: u32 = read_small(&dir.join("bits_per_pixel"))?.parse().ok()?;
    let stride: Option<u32> = read_small(&dir.join("stride")).and_then(|s| s.parse().ok());
    let virt = read_small(&dir.join("virtual_size")).and_then(|s| {
        let (w, h) = s.split_once(',')?;
        Some((w.trim().parse::<u32>().ok()?, h.trim().parse::<u32>().ok()?))
    });
    let format = match bpp {
        16 => Some(PixelFormat::RGB565),
        24 => Some(PixelFormat::RGB888),
        32 => Some(PixelFormat::XRGB8888),
        _ => None,
    };
    let mem_len = match (stride, virt) {
        (Some(s), Some((_, h))) => usize::try_from(u64::from(s) * u64::from(h)).ok(),
        _ => None,
    };
    Some(Probed {
        width: None,
        height: None,
        format,
        format_problem: format.is_none().then(|| format!("{bpp} bits per pixel")),
        stride,
        xoffset: 0,
        yoffset: 0,
        mem_len,
    })
}

/// A [`Screen`] on a framebuffer device (or file).
pub struct FbScreen {
    device: PathBuf,
    map: Mapping,
    /// Byte offset of the visible area's top-left pixel.
    origin: usize,
    canvas: Canvas,
    painter: Painter,
    /// The VT held in graphics mode; `None` for a plain file. Dropped (its mode put back)
    /// with the screen.
    console: Option<Console>,
    /// Kept open for the life of the mapping.
    _file: File,
}

fn io_err(what: String) -> impl FnOnce(std::io::Error) -> DisplayError {
    move |source| DisplayError::Io { what, source }
}

impl FbScreen {
    /// Opens `[display] device` and works out its geometry (see the module docs).
    pub fn open(d: &DisplayConfig) -> Result<FbScreen, DisplayError> {
        let device = d.device.clone();
        let name = device.display().to_string();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&device)
            .map_err(io_err(format!("framebuffer {name}: opening")))?;
        let meta = file
            .metadata()
            .map_err(io_err(format!("framebuffer {name}: stat")))?;
        let probed = probe_ioctl(&file)
            .or_else(|| {
                let base = device.file_name()?.to_str()?;
                base.starts_with("fb")
                    .then(|| probe_sysfs(&Path::new("/sys/class/graphics").join(base)))
                    .flatten()
            })
            .unwrap_or_default();
        let unsupported =
            |why: String| DisplayError::Unsupported(format!("framebuffer {name}: {why}"));
        let width = d.width.or(probed.width).filter(|w| *w > 0);
        let height = d.height.or(probed.height).filter(|h| *h > 0);
        let (Some(width), Some(height)) = (width, height) else {
            return Err(unsupported(
                "the device does not report its size; set [display] width and height".into(),
            ));
        };
        if let (Some(pw), Some(ph)) = (probed.width, probed.height) {
            if (pw, ph) != (width, height) {
                eprintln!(
                    "devauth: framebuffer {name} is {pw}x{ph}, the config says {width}x{height}; using the config"
                );
            }
        }
        let format = match (d.format, probed.format) {
            (Some(f), _) | (None, Some(f)) => f,
            (None, None) => {
                let why = probed
                    .format_problem
                    .unwrap_or_else(|| "the device does not report its pixel format".into());
                return Err(unsupported(format!("{why}; set [display] format")));
            }
        };
        let bpp = usize::from(format.bytes);
        let row = width as usize * bpp;
        let stride = d.stride.or(probed.stride).map_or(row, |s| s as usize);
        if stride < row {
            return Err(unsupported(format!(
                "stride {stride} is less than a row of {width} pixels ({row} bytes)"
            )));
        }
        let origin = probed.yoffset as usize * stride + probed.xoffset as usize * bpp;
        let needed = origin + (height as usize - 1) * stride + row;
        let mem_len = if meta.is_file() {
            // A plain file (tests, host checks): grow it to hold the screen.
            let len = meta.len().max(needed as u64);
            if meta.len() < len {
                file.set_len(len)
                    .map_err(io_err(format!("framebuffer {name}: resizing")))?;
            }
            usize::try_from(len).unwrap_or(usize::MAX)
        } else {
            probed.mem_len.unwrap_or(needed)
        };
        if needed > mem_len {
            return Err(unsupported(format!(
                "{width}x{height} at {stride} bytes per row needs {needed} bytes, the device has {mem_len}"
            )));
        }
        let map =
            Mapping::new(&file, mem_len, 0).map_err(io_err(format!("framebuffer {name}: mmap")))?;
        let mut canvas = Canvas::new(Size::new(width, height), stride, format, d.rotation);
        canvas.mark_all_dirty();
        let logical = d.rotation.logical(Size::new(width, height));
        // Only now that the device is open (see screen::console), and only for a device: a
        // plain file is no screen the console could draw on.
        let console = meta
            .file_type()
            .is_char_device()
            .then(|| Console::take(&d.tty));
        Ok(FbScreen {
            device,
            map,
            origin,
            canvas,
            painter: Painter::new(logical, d.profile()),
            console,
            _file: file,
        })
    }

    pub fn canvas(&self) -> &Canvas {
        &self.canvas
    }

    /// Forgets what is on screen: the next `show` redraws everything (used by benchmarks, and
    /// after another program drew over the console).
    pub fn invalidate(&mut self) {
        self.painter.invalidate();
    }

    /// The layout on screen, if any.
    pub fn layout(&self) -> Option<&super::layout::Layout> {
        self.painter.layout()
    }

    /// Copies the changed rectangle to the device: one copy per row.
    fn push(&mut self) -> Result<(), DisplayError> {
        let name = format!("framebuffer {}", self.device.display());
        self.map
            .copy_dirty(&mut self.canvas, self.origin, &name)
            .map(|_| ())
    }
}

impl PixelDevice for FbScreen {
    type Canvas = Canvas;

    fn painter_and_canvas(&mut self) -> (&mut Painter, &mut Canvas) {
        (&mut self.painter, &mut self.canvas)
    }

    fn push(&mut self) -> Result<(), DisplayError> {
        FbScreen::push(self)
    }

    fn prepare(&mut self) -> Result<Shown, DisplayError> {
        let Some(console) = &mut self.console else {
            return Ok(Shown::Same);
        };
        // After a hand_back the next show holds the console again.
        console.grab();
        Ok(match console.visibility() {
            Visibility::Shown => Shown::Same,
            Visibility::Hidden => Shown::Hidden,
            Visibility::Returned => Shown::Lost,
        })
    }

    fn hand_back(&mut self, _blank: bool) -> Result<(), DisplayError> {
        if let Some(console) = &mut self.console {
            console.hand_back();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_struct_sizes() {
        // <linux/fb.h>: 160 bytes; fix is 68 on 64-bit, 80 on 64-bit with padding…
        assert_eq!(std::mem::size_of::<FbVarScreeninfo>(), 160);
        let long = std::mem::size_of::<libc::c_ulong>();
        assert_eq!(
            std::mem::size_of::<FbFixScreeninfo>(),
            if long == 8 { 80 } else { 68 }
        );
    }

    #[test]
    fn sysfs_fallback() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bits_per_pixel"), "16\n").unwrap();
        std::fs::write(dir.path().join("stride"), "1280\n").unwrap();
        std::fs::write(dir.path().join("virtual_size"), "640,960\n").unwrap();
        let p = probe_sysfs(dir.path()).unwrap();
        assert_eq!(p.format, Some(PixelFormat::RGB565));
        assert_eq!(p.stride, Some(1280));
        assert_eq!(p.mem_len, Some(1280 * 960));
        assert_eq!(p.width, None);
        std::fs::write(dir.path().join("bits_per_pixel"), "1\n").unwrap();
        assert!(probe_sysfs(dir.path()).unwrap().format.is_none());
    }

    #[test]
    fn a_plain_file_without_overrides_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fb");
        std::fs::write(&path, b"").unwrap();
        let d = DisplayConfig {
            device: path.clone(),
            ..DisplayConfig::default()
        };
        let e = FbScreen::open(&d).err().unwrap().to_string();
        assert!(e.contains("width and height"), "{e}");
        let d = DisplayConfig {
            width: Some(10),
            height: Some(10),
            ..d
        };
        let e = FbScreen::open(&d).err().unwrap().to_string();
        assert!(e.contains("format"), "{e}");
        let d = DisplayConfig {
            device: dir.path().join("missing"),
            ..d
        };
        let e = FbScreen::open(&d).err().unwrap().to_string();
        assert!(e.contains("missing") && e.contains("opening"), "{e}");
    }
}
