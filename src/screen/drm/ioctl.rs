//! The DRM/KMS ioctls devauth uses, as raw `libc::ioctl` calls on `/dev/dri/cardN`: the kernel
//! structs (`<drm/drm.h>`, `<drm/drm_mode.h>`; every size is asserted in the tests), the
//! request numbers, and one thin method per call. What the kernel hands back is bounded (at
//! most [`MAX_OBJECTS`] connectors, encoders and CRTCs, [`MAX_MODES`] modes per connector)
//! before anything else reads it.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

use super::card::{Connector, Encoder, ModeInfo, Resources};

/// More than any real card has; a larger count is read as this many.
pub const MAX_OBJECTS: usize = 32;
/// Monitors list a few dozen modes; a larger count is read as this many.
pub const MAX_MODES: usize = 256;

// The request number: direction, size, type 'd', number (<asm-generic/ioctl.h>). MIPS, PowerPC
// and SPARC lay the bits out differently.
const OTHER_IOCTL_LAYOUT: bool = cfg!(any(
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "powerpc",
    target_arch = "powerpc64",
    target_arch = "sparc",
    target_arch = "sparc64"
));
mod dir {
    use super::OTHER_IOCTL_LAYOUT as OTHER;
    pub const NONE: u32 = if OTHER { 1 } else { 0 };
    pub const READ_WRITE: u32 = if OTHER { 2 | 4 } else { 2 | 1 };
    pub const SIZE_BITS: u32 = if OTHER { 13 } else { 14 };
}

const fn ioc(direction: u32, nr: u32, size: usize) -> u32 {
    (direction << (16 + dir::SIZE_BITS)) | ((size as u32) << 16) | ((b'd' as u32) << 8) | nr
}
const fn iowr<T>(nr: u32) -> u32 {
    ioc(dir::READ_WRITE, nr, std::mem::size_of::<T>())
}

pub const SET_MASTER: u32 = ioc(dir::NONE, 0x1e, 0);
pub const DROP_MASTER: u32 = ioc(dir::NONE, 0x1f, 0);
pub const GET_CAP: u32 = iowr::<GetCap>(0x0c);
pub const MODE_GETRESOURCES: u32 = iowr::<CardRes>(0xA0);
pub const MODE_GETCRTC: u32 = iowr::<ModeCrtc>(0xA1);
pub const MODE_SETCRTC: u32 = iowr::<ModeCrtc>(0xA2);
pub const MODE_GETENCODER: u32 = iowr::<GetEncoder>(0xA6);
pub const MODE_GETCONNECTOR: u32 = iowr::<GetConnector>(0xA7);
pub const MODE_ADDFB: u32 = iowr::<FbCmd>(0xAE);
pub const MODE_RMFB: u32 = iowr::<u32>(0xAF);
pub const MODE_DIRTYFB: u32 = iowr::<FbDirtyCmd>(0xB1);
pub const MODE_CREATE_DUMB: u32 = iowr::<CreateDumb>(0xB2);
pub const MODE_MAP_DUMB: u32 = iowr::<MapDumb>(0xB3);
pub const MODE_DESTROY_DUMB: u32 = iowr::<DestroyDumb>(0xB4);

const CAP_DUMB_BUFFER: u64 = 0x1;

#[repr(C)]
#[derive(Default)]
pub struct GetCap {
    pub capability: u64,
    pub value: u64,
}

#[repr(C)]
#[derive(Default)]
pub struct CardRes {
    pub fb_id_ptr: u64,
    pub crtc_id_ptr: u64,
    pub connector_id_ptr: u64,
    pub encoder_id_ptr: u64,
    pub count_fbs: u32,
    pub count_crtcs: u32,
    pub count_connectors: u32,
    pub count_encoders: u32,
    pub min_width: u32,
    pub max_width: u32,
    pub min_height: u32,
    pub max_height: u32,
}

#[repr(C)]
#[derive(Default)]
pub struct GetConnector {
    pub encoders_ptr: u64,
    pub modes_ptr: u64,
    pub props_ptr: u64,
    pub prop_values_ptr: u64,
    pub count_modes: u32,
    pub count_props: u32,
    pub count_encoders: u32,
    pub encoder_id: u32,
    pub connector_id: u32,
    pub connector_type: u32,
    pub connector_type_id: u32,
    pub connection: u32,
    pub mm_width: u32,
    pub mm_height: u32,
    pub subpixel: u32,
    pub pad: u32,
}

#[repr(C)]
#[derive(Default)]
pub struct GetEncoder {
    pub encoder_id: u32,
    pub encoder_type: u32,
    pub crtc_id: u32,
    pub possible_crtcs: u32,
    pub possible_clones: u32,
}

/// `struct drm_mode_crtc`: what a CRTC scans out (GETCRTC) or should (SETCRTC).
#[repr(C)]
#[derive(Default, Clone, Copy, Debug)]
pub struct ModeCrtc {
    pub set_connectors_ptr: u64,
    pub count_connectors: u32,
    pub crtc_id: u32,
    pub fb_id: u32,
    pub x: u32,
    pub y: u32,
    pub gamma_size: u32,
    pub mode_valid: u32,
    pub mode: ModeInfo,
}

#[repr(C)]
#[derive(Default)]
pub struct CreateDumb {
    pub height: u32,
    pub width: u32,
    pub bpp: u32,
    pub flags: u32,
    pub handle: u32,
    pub pitch: u32,
    pub size: u64,
}

#[repr(C)]
#[derive(Default)]
pub struct MapDumb {
    pub handle: u32,
    pub pad: u32,
    pub offset: u64,
}

#[repr(C)]
#[derive(Default)]
pub struct DestroyDumb {
    pub handle: u32,
}

#[repr(C)]
#[derive(Default)]
pub struct FbCmd {
    pub fb_id: u32,
    pub width: u32,
    pub height: u32,
    pub pitch: u32,
    pub bpp: u32,
    pub depth: u32,
    pub handle: u32,
}

#[repr(C)]
#[derive(Default)]
pub struct FbDirtyCmd {
    pub fb_id: u32,
    pub flags: u32,
    pub color: u32,
    pub num_clips: u32,
    pub clips_ptr: u64,
}

/// `struct drm_clip_rect`: x2/y2 exclusive.
#[repr(C)]
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClipRect {
    pub x1: u16,
    pub y1: u16,
    pub x2: u16,
    pub y2: u16,
}

/// A dumb buffer as CREATE_DUMB made it.
#[derive(Debug, Clone, Copy)]
pub struct Dumb {
    pub handle: u32,
    pub pitch: u32,
    pub size: u64,
}

fn ptr<T>(v: &mut [T]) -> u64 {
    v.as_mut_ptr() as usize as u64
}

/// Reads a kernel count, capped: the buffers handed to the second call are this long.
fn capped(n: u32, max: usize) -> usize {
    usize::try_from(n).unwrap_or(max).min(max)
}

/// An open DRM card node.
pub struct Card(pub File);

impl Card {
    /// One ioctl; EINTR and EAGAIN are retried, as libdrm's `drmIoctl` does.
    fn call<T>(&self, request: u32, arg: *mut T) -> io::Result<()> {
        for _ in 0..100 {
            // SAFETY: every caller passes the request number made from the size of `T` (the
            // kernel struct it writes) and a pointer to a live `T`; any array the struct
            // points at is a live Rust buffer at least as long as the count the struct gives.
            // `as _`: the request's type is c_ulong on glibc and c_int on musl.
            let rc = unsafe { libc::ioctl(self.0.as_raw_fd(), request as _, arg) };
            if rc >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if !matches!(e.raw_os_error(), Some(libc::EINTR) | Some(libc::EAGAIN)) {
                return Err(e);
            }
        }
        Err(io::Error::from_raw_os_error(libc::EINTR))
    }

    pub fn set_master(&self) -> io::Result<()> {
        self.call(SET_MASTER, std::ptr::null_mut::<u8>())
    }

    pub fn drop_master(&self) -> io::Result<()> {
        self.call(DROP_MASTER, std::ptr::null_mut::<u8>())
    }

    pub fn has_dumb_buffers(&self) -> io::Result<bool> {
        let mut cap = GetCap {
            capability: CAP_DUMB_BUFFER,
            value: 0,
        };
        self.call(GET_CAP, &mut cap)?;
        Ok(cap.value != 0)
    }

    /// The card's CRTCs, connectors (each with its modes) and encoders. Counts are asked
    /// first, then the lists; a list that grew in between (a hot plug) is asked again.
    pub fn resources(&self) -> io::Result<Resources> {
        for _ in 0..4 {
            let mut res = CardRes::default();
            self.call(MODE_GETRESOURCES, &mut res)?;
            let mut crtcs = vec![0u32; capped(res.count_crtcs, MAX_OBJECTS)];
            let mut connectors = vec![0u32; capped(res.count_connectors, MAX_OBJECTS)];
            let mut encoders = vec![0u32; capped(res.count_encoders, MAX_OBJECTS)];
            let mut again = CardRes {
                crtc_id_ptr: ptr(&mut crtcs),
                connector_id_ptr: ptr(&mut connectors),
                encoder_id_ptr: ptr(&mut encoders),
                count_crtcs: crtcs.len() as u32,
                count_connectors: connectors.len() as u32,
                count_encoders: encoders.len() as u32,
                ..CardRes::default()
            };
            self.call(MODE_GETRESOURCES, &mut again)?;
            let grew = again.count_crtcs as usize > crtcs.len()
                || again.count_connectors as usize > connectors.len()
                || again.count_encoders as usize > encoders.len();
            if grew && crtcs.len() < MAX_OBJECTS && connectors.len() < MAX_OBJECTS {
                continue;
            }
            crtcs.truncate(again.count_crtcs as usize);
            connectors.truncate(again.count_connectors as usize);
            encoders.truncate(again.count_encoders as usize);
            let connectors = connectors
                .iter()
                .map(|id| self.connector(*id))
                .collect::<io::Result<Vec<_>>>()?;
            let encoders = encoders
                .iter()
                .filter_map(|id| self.encoder(*id).ok())
                .collect();
            return Ok(Resources {
                crtcs,
                connectors,
                encoders,
            });
        }
        Err(io::Error::from_raw_os_error(libc::EAGAIN))
    }

    /// One connector. The first call (no mode buffer) makes the driver probe the output.
    fn connector(&self, id: u32) -> io::Result<Connector> {
        for _ in 0..4 {
            let mut c = GetConnector {
                connector_id: id,
                ..GetConnector::default()
            };
            self.call(MODE_GETCONNECTOR, &mut c)?;
            let mut modes = vec![ModeInfo::default(); capped(c.count_modes, MAX_MODES)];
            let mut encoders = vec![0u32; capped(c.count_encoders, MAX_OBJECTS)];
            let mut again = GetConnector {
                connector_id: id,
                modes_ptr: ptr(&mut modes),
                encoders_ptr: ptr(&mut encoders),
                count_modes: modes.len() as u32,
                count_encoders: encoders.len() as u32,
                ..GetConnector::default()
            };
            self.call(MODE_GETCONNECTOR, &mut again)?;
            // The kernel fills the lists only when they are long enough for all of it.
            let fits = again.count_modes as usize <= modes.len()
                && again.count_encoders as usize <= encoders.len();
            if !fits && modes.len() < MAX_MODES && encoders.len() < MAX_OBJECTS {
                continue;
            }
            if !fits {
                modes.clear();
                encoders.clear();
            }
            modes.truncate(again.count_modes as usize);
            encoders.truncate(again.count_encoders as usize);
            return Ok(Connector {
                id,
                kind: again.connector_type,
                kind_id: again.connector_type_id,
                connection: again.connection,
                encoder_id: again.encoder_id,
                encoders,
                modes,
            });
        }
        Err(io::Error::from_raw_os_error(libc::EAGAIN))
    }

    fn encoder(&self, id: u32) -> io::Result<Encoder> {
        let mut e = GetEncoder {
            encoder_id: id,
            ..GetEncoder::default()
        };
        self.call(MODE_GETENCODER, &mut e)?;
        Ok(Encoder {
            id,
            crtc_id: e.crtc_id,
            possible_crtcs: e.possible_crtcs,
        })
    }

    pub fn get_crtc(&self, crtc_id: u32) -> io::Result<ModeCrtc> {
        let mut c = ModeCrtc {
            crtc_id,
            ..ModeCrtc::default()
        };
        self.call(MODE_GETCRTC, &mut c)?;
        // Only the connector list pointer is ours to give; the kernel never writes it back,
        // but a restore must not reuse anything from here but ids and the mode.
        c.set_connectors_ptr = 0;
        c.count_connectors = 0;
        Ok(c)
    }

    /// Scans `fb_id` out on `crtc_id` to `connectors` at `mode`; `fb_id` 0 with no mode and
    /// no connectors switches the CRTC off.
    pub fn set_crtc(
        &self,
        crtc_id: u32,
        fb_id: u32,
        (x, y): (u32, u32),
        connectors: &[u32],
        mode: Option<&ModeInfo>,
    ) -> io::Result<()> {
        let mut ids = connectors.to_vec();
        let mut c = ModeCrtc {
            set_connectors_ptr: if ids.is_empty() { 0 } else { ptr(&mut ids) },
            count_connectors: ids.len() as u32,
            crtc_id,
            fb_id,
            x,
            y,
            gamma_size: 0,
            mode_valid: u32::from(mode.is_some()),
            mode: mode.copied().unwrap_or_default(),
        };
        self.call(MODE_SETCRTC, &mut c)
    }

    pub fn create_dumb(&self, width: u32, height: u32) -> io::Result<Dumb> {
        let mut d = CreateDumb {
            width,
            height,
            bpp: 32,
            ..CreateDumb::default()
        };
        self.call(MODE_CREATE_DUMB, &mut d)?;
        Ok(Dumb {
            handle: d.handle,
            pitch: d.pitch,
            size: d.size,
        })
    }

    /// The offset to mmap the dumb buffer at (on the card's descriptor).
    pub fn map_dumb(&self, handle: u32) -> io::Result<u64> {
        let mut m = MapDumb {
            handle,
            ..MapDumb::default()
        };
        self.call(MODE_MAP_DUMB, &mut m)?;
        Ok(m.offset)
    }

    pub fn destroy_dumb(&self, handle: u32) -> io::Result<()> {
        self.call(MODE_DESTROY_DUMB, &mut DestroyDumb { handle })
    }

    /// A framebuffer object over the dumb buffer: 32 bits per pixel, depth 24 (XRGB8888).
    pub fn add_fb(&self, width: u32, height: u32, dumb: &Dumb) -> io::Result<u32> {
        let mut f = FbCmd {
            width,
            height,
            pitch: dumb.pitch,
            bpp: 32,
            depth: 24,
            handle: dumb.handle,
            ..FbCmd::default()
        };
        self.call(MODE_ADDFB, &mut f)?;
        Ok(f.fb_id)
    }

    pub fn rm_fb(&self, fb_id: u32) -> io::Result<()> {
        let mut id = fb_id;
        self.call(MODE_RMFB, &mut id)
    }

    /// Tells the driver which rectangle changed (drivers that scan out of the buffer
    /// directly answer ENOSYS: nothing to do).
    pub fn dirty(&self, fb_id: u32, clip: ClipRect) -> io::Result<()> {
        let mut clips = [clip];
        let mut d = FbDirtyCmd {
            fb_id,
            num_clips: 1,
            clips_ptr: ptr(&mut clips),
            ..FbDirtyCmd::default()
        };
        self.call(MODE_DIRTYFB, &mut d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    #[test]
    fn structs_have_the_kernel_sizes() {
        // <drm/drm_mode.h>, <drm/drm.h>: the same on 32- and 64-bit (pointers are u64).
        assert_eq!(size_of::<GetCap>(), 16);
        assert_eq!(size_of::<CardRes>(), 64);
        assert_eq!(size_of::<ModeInfo>(), 68);
        assert_eq!(size_of::<GetConnector>(), 80);
        assert_eq!(size_of::<GetEncoder>(), 20);
        assert_eq!(size_of::<ModeCrtc>(), 104);
        assert_eq!(size_of::<CreateDumb>(), 32);
        assert_eq!(size_of::<MapDumb>(), 16);
        assert_eq!(size_of::<DestroyDumb>(), 4);
        assert_eq!(size_of::<FbCmd>(), 28);
        assert_eq!(size_of::<FbDirtyCmd>(), 24);
        assert_eq!(size_of::<ClipRect>(), 8);
        assert_eq!(std::mem::offset_of!(ModeCrtc, mode), 36);
        assert_eq!(std::mem::offset_of!(ModeInfo, name), 36);
        assert_eq!(std::mem::offset_of!(GetConnector, connection), 60);
    }

    #[test]
    fn request_numbers_match_libdrm() {
        if OTHER_IOCTL_LAYOUT {
            return; // the numbers below are the generic layout's
        }
        // Printed by a C program including libdrm's drm.h/drm_mode.h (x86_64, arm, aarch64).
        for (ours, theirs) in [
            (SET_MASTER, 0x0000641e),
            (DROP_MASTER, 0x0000641f),
            (GET_CAP, 0xc010640c),
            (MODE_GETRESOURCES, 0xc04064a0),
            (MODE_GETCRTC, 0xc06864a1),
            (MODE_SETCRTC, 0xc06864a2),
            (MODE_GETENCODER, 0xc01464a6),
            (MODE_GETCONNECTOR, 0xc05064a7),
            (MODE_ADDFB, 0xc01c64ae),
            (MODE_RMFB, 0xc00464af),
            (MODE_DIRTYFB, 0xc01864b1),
            (MODE_CREATE_DUMB, 0xc02064b2),
            (MODE_MAP_DUMB, 0xc01064b3),
            (MODE_DESTROY_DUMB, 0xc00464b4),
        ] {
            assert_eq!(ours, theirs, "{ours:#x} != {theirs:#x}");
        }
    }

    #[test]
    fn counts_from_the_kernel_are_capped() {
        assert_eq!(capped(3, MAX_MODES), 3);
        assert_eq!(capped(u32::MAX, MAX_MODES), MAX_MODES);
    }

    #[test]
    fn a_file_that_is_no_card_is_an_error_not_a_crash() {
        let f = tempfile::tempfile().unwrap();
        let card = Card(f);
        assert!(card.resources().is_err());
        assert!(card.has_dumb_buffers().is_err());
    }
}
