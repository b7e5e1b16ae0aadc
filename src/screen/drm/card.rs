//! What a DRM card reports, as plain data: its CRTCs, connectors, encoders and their modes.
//! `ioctl.rs` reads them from the kernel, `choose.rs` decides from them; neither needs the
//! other.

/// `drm_mode_modeinfo.type`: the mode the monitor asks for.
pub const MODE_TYPE_PREFERRED: u32 = 1 << 3;

/// `struct drm_mode_modeinfo`: one display mode, handed back to SETCRTC as the kernel gave it.
#[repr(C)]
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModeInfo {
    pub clock: u32,
    pub hdisplay: u16,
    pub hsync_start: u16,
    pub hsync_end: u16,
    pub htotal: u16,
    pub hskew: u16,
    pub vdisplay: u16,
    pub vsync_start: u16,
    pub vsync_end: u16,
    pub vtotal: u16,
    pub vscan: u16,
    pub vrefresh: u32,
    pub flags: u32,
    pub type_: u32,
    pub name: [u8; 32],
}

/// `drm_mode_get_connector.connection`.
pub const CONNECTED: u32 = 1;
pub const UNKNOWN_CONNECTION: u32 = 3;

/// One connector as the card describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connector {
    pub id: u32,
    /// `DRM_MODE_CONNECTOR_*` and its index among outputs of that type (HDMI-A-**1**).
    pub kind: u32,
    pub kind_id: u32,
    pub connection: u32,
    /// The encoder driving it now, 0 for none.
    pub encoder_id: u32,
    pub encoders: Vec<u32>,
    pub modes: Vec<ModeInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoder {
    pub id: u32,
    /// The CRTC feeding it now, 0 for none.
    pub crtc_id: u32,
    /// Bit i: it can be fed by `Resources::crtcs[i]`.
    pub possible_crtcs: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resources {
    pub crtcs: Vec<u32>,
    pub connectors: Vec<Connector>,
    pub encoders: Vec<Encoder>,
}

/// The kernel's names of connector types (`drm_connector_enum_list`).
const KINDS: [&str; 21] = [
    "Unknown",
    "VGA",
    "DVI-I",
    "DVI-D",
    "DVI-A",
    "Composite",
    "SVIDEO",
    "LVDS",
    "Component",
    "DIN",
    "DP",
    "HDMI-A",
    "HDMI-B",
    "TV",
    "eDP",
    "Virtual",
    "DSI",
    "DPI",
    "Writeback",
    "SPI",
    "USB",
];

impl Connector {
    /// `HDMI-A-1`, `Virtual-1`: the name in the kernel log and in `/sys/class/drm/card0-*`.
    pub fn name(&self) -> String {
        let kind = usize::try_from(self.kind)
            .ok()
            .and_then(|k| KINDS.get(k))
            .copied()
            .unwrap_or("Unknown");
        format!("{kind}-{}", self.kind_id)
    }

    pub(super) fn state(&self) -> &'static str {
        match self.connection {
            CONNECTED if self.modes.is_empty() => "connected, no modes",
            CONNECTED => "connected",
            UNKNOWN_CONNECTION => "unknown",
            _ => "disconnected",
        }
    }
}
