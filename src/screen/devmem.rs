//! Display memory mapped from a device (an fbdev node, a DRM dumb buffer) and the one way
//! devauth writes to it: the shadow canvas's changed rectangle, one copy per row, never a read
//! (device memory is often uncached and slow to read).

use std::fs::File;
use std::os::fd::AsRawFd;

use embedded_graphics::primitives::Rectangle;

use super::canvas::Canvas;
use crate::screen::error::DisplayError;

/// A shared, write-only view of device memory.
pub struct Mapping {
    ptr: *mut u8,
    len: usize,
}

impl Mapping {
    /// Maps `len` bytes of `file` from `offset` (0 for fbdev; the fake offset MAP_DUMB gives
    /// for a DRM dumb buffer).
    pub fn new(file: &File, len: usize, offset: u64) -> std::io::Result<Mapping> {
        let offset = libc::off_t::try_from(offset)
            .map_err(|_| std::io::Error::from_raw_os_error(libc::EOVERFLOW))?;
        // SAFETY: a fresh shared mapping of `len` bytes of an open descriptor; the kernel
        // picks the address. The result is checked against MAP_FAILED.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                offset,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Mapping {
            ptr: ptr.cast::<u8>(),
            len,
        })
    }

    /// Copies `src` to `offset`; refuses (returns false) anything outside the mapping.
    fn write(&mut self, offset: usize, src: &[u8]) -> bool {
        match offset.checked_add(src.len()) {
            Some(end) if end <= self.len => {
                // SAFETY: `offset..end` lies inside the live mapping (checked above), and
                // `src` is a separate Rust slice, so the regions do not overlap.
                unsafe {
                    std::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr.add(offset), src.len());
                }
                true
            }
            _ => false,
        }
    }

    /// Copies the canvas's changed rectangle to `origin` (the byte offset of the visible
    /// top-left pixel), rows `canvas.stride()` apart. Returns the rectangle, if any changed;
    /// `device` names the device in the error.
    pub fn copy_dirty(
        &mut self,
        canvas: &mut Canvas,
        origin: usize,
        device: &str,
    ) -> Result<Option<Rectangle>, DisplayError> {
        let Some(dirty) = canvas.take_dirty() else {
            return Ok(None);
        };
        let bpp = usize::from(canvas.format().bytes);
        let stride = canvas.stride();
        let x0 = usize::try_from(dirty.top_left.x).unwrap_or(0);
        let y0 = usize::try_from(dirty.top_left.y).unwrap_or(0);
        let len = dirty.size.width as usize * bpp;
        let src = canvas.bytes();
        for y in y0..y0 + dirty.size.height as usize {
            let at = y * stride + x0 * bpp;
            let Some(bytes) = src.get(at..at + len) else {
                continue;
            };
            if !self.write(origin + at, bytes) {
                return Err(DisplayError::Unsupported(format!(
                    "{device}: row {y} is outside the device memory"
                )));
            }
        }
        Ok(Some(dirty))
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned; nothing uses them after this.
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
        }
    }
}
