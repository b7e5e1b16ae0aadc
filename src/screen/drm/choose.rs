//! Which output, mode and CRTC the DRM screen uses, decided from the card's resources as
//! plain data (pure; the ioctls that read them are in `ioctl.rs`).
//!
//! The rule: the first connected connector with modes (an "unknown" one, as some virtual and
//! embedded outputs report, when none says connected); on it the mode of `[display] width` ×
//! `height` when set (its preferred one of that size, else the highest refresh), else the
//! monitor's preferred mode, else its first; the CRTC its encoder drives now, else the first
//! one any of its encoders can drive.

use super::card::{
    CONNECTED, Connector, MODE_TYPE_PREFERRED, ModeInfo, Resources, UNKNOWN_CONNECTION,
};

/// What the screen will be drawn on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub connector: u32,
    /// The output's name, as the kernel logs it (`HDMI-A-1`).
    pub name: String,
    pub mode: ModeInfo,
    pub crtc: u32,
}

fn size_of(m: &ModeInfo) -> (u32, u32) {
    (u32::from(m.hdisplay), u32::from(m.vdisplay))
}

fn preferred(m: &ModeInfo) -> bool {
    m.type_ & MODE_TYPE_PREFERRED != 0
}

/// The mode to use on a connector: see the module docs. The error lists the sizes it has.
pub fn choose_mode(modes: &[ModeInfo], want: Option<(u32, u32)>) -> Result<ModeInfo, String> {
    let Some(want) = want else {
        return modes
            .iter()
            .find(|m| preferred(m))
            .or_else(|| modes.first())
            .copied()
            .ok_or_else(|| "it has no modes".to_string());
    };
    let sized = modes.iter().filter(|m| size_of(m) == want);
    if let Some(m) = sized.clone().find(|m| preferred(m)) {
        return Ok(*m);
    }
    if let Some(m) = sized.max_by_key(|m| m.vrefresh) {
        return Ok(*m);
    }
    let mut sizes: Vec<String> = Vec::new();
    for m in modes {
        let s = format!("{}x{}", m.hdisplay, m.vdisplay);
        if !sizes.contains(&s) && sizes.len() < 12 {
            sizes.push(s);
        }
    }
    Err(format!(
        "it has no {}x{} mode (it has {}); set [display] width and height to one of them, or leave them out for the preferred mode",
        want.0,
        want.1,
        sizes.join(", ")
    ))
}

/// The CRTC for `c`: the one its encoder feeds now, else the first any encoder can take.
fn choose_crtc(res: &Resources, c: &Connector) -> Option<u32> {
    let current = res
        .encoders
        .iter()
        .find(|e| e.id == c.encoder_id && c.encoder_id != 0)
        .map(|e| e.crtc_id)
        .filter(|id| *id != 0 && res.crtcs.contains(id));
    current.or_else(|| {
        c.encoders
            .iter()
            .filter_map(|id| res.encoders.iter().find(|e| e.id == *id))
            .find_map(|e| {
                res.crtcs
                    .iter()
                    .take(32)
                    .enumerate()
                    .find(|(i, _)| e.possible_crtcs & (1 << i) != 0)
                    .map(|(_, id)| *id)
            })
    })
}

/// Output, mode and CRTC (see the module docs); the error says what the card has.
pub fn choose(res: &Resources, want: Option<(u32, u32)>) -> Result<Choice, String> {
    let usable = |state: u32| {
        res.connectors
            .iter()
            .find(|c| c.connection == state && !c.modes.is_empty())
    };
    let Some(c) = usable(CONNECTED).or_else(|| usable(UNKNOWN_CONNECTION)) else {
        if res.connectors.is_empty() {
            return Err("the card has no outputs (connectors)".to_string());
        }
        let states: Vec<String> = res
            .connectors
            .iter()
            .map(|c| format!("{} {}", c.name(), c.state()))
            .collect();
        return Err(format!(
            "no connected output with modes ({}); is a display plugged in?",
            states.join(", ")
        ));
    };
    let name = c.name();
    let mode = choose_mode(&c.modes, want).map_err(|why| format!("output {name}: {why}"))?;
    let crtc = choose_crtc(res, c).ok_or_else(|| format!("output {name}: no CRTC can drive it"))?;
    Ok(Choice {
        connector: c.id,
        name,
        mode,
        crtc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::screen::drm::card::Encoder;

    fn mode(w: u16, h: u16, hz: u32, preferred: bool) -> ModeInfo {
        ModeInfo {
            hdisplay: w,
            vdisplay: h,
            vrefresh: hz,
            type_: if preferred { MODE_TYPE_PREFERRED } else { 0 },
            ..ModeInfo::default()
        }
    }

    fn connector(id: u32, kind: u32, connection: u32, modes: Vec<ModeInfo>) -> Connector {
        Connector {
            id,
            kind,
            kind_id: 1,
            connection,
            encoder_id: 0,
            encoders: vec![id + 100],
            modes,
        }
    }

    /// Two CRTCs (40, 41); each connector N has encoder N+100 able to use both.
    fn card(connectors: Vec<Connector>) -> Resources {
        Resources {
            crtcs: vec![40, 41],
            encoders: connectors
                .iter()
                .map(|c| Encoder {
                    id: c.id + 100,
                    crtc_id: 0,
                    possible_crtcs: 0b11,
                })
                .collect(),
            connectors,
        }
    }

    #[test]
    fn the_first_connected_output_at_its_preferred_mode() {
        let modes = vec![
            mode(1920, 1080, 60, false),
            mode(1280, 800, 60, true),
            mode(1024, 768, 60, false),
        ];
        let res = card(vec![
            connector(1, 1, 2, vec![mode(640, 480, 60, true)]), // VGA, disconnected
            connector(2, 11, CONNECTED, modes.clone()),
            connector(3, 10, CONNECTED, modes),
        ]);
        let c = choose(&res, None).unwrap();
        assert_eq!((c.connector, c.name.as_str(), c.crtc), (2, "HDMI-A-1", 40));
        assert_eq!((c.mode.hdisplay, c.mode.vdisplay), (1280, 800));
    }

    #[test]
    fn a_configured_size_picks_that_mode() {
        let modes = vec![
            mode(1920, 1080, 50, false),
            mode(1920, 1080, 60, false),
            mode(1280, 720, 60, true),
        ];
        let m = choose_mode(&modes, Some((1920, 1080))).unwrap();
        assert_eq!((m.hdisplay, m.vrefresh), (1920, 60));
        let mut preferred = modes.clone();
        preferred[0].type_ = MODE_TYPE_PREFERRED;
        assert_eq!(
            choose_mode(&preferred, Some((1920, 1080)))
                .unwrap()
                .vrefresh,
            50
        );
        let e = choose_mode(&modes, Some((800, 600))).unwrap_err();
        assert!(
            e.contains("no 800x600 mode") && e.contains("1920x1080, 1280x720"),
            "{e}"
        );
        // No preferred mode: the first.
        let plain = vec![mode(1024, 768, 60, false), mode(800, 600, 60, false)];
        assert_eq!(choose_mode(&plain, None).unwrap().hdisplay, 1024);
        assert!(choose_mode(&[], None).is_err());
    }

    #[test]
    fn the_crtc_driving_the_output_now_wins() {
        let mut res = card(vec![connector(
            2,
            15,
            CONNECTED,
            vec![mode(1024, 768, 60, true)],
        )]);
        res.connectors[0].encoder_id = 102;
        res.encoders[0].crtc_id = 41;
        assert_eq!(choose(&res, None).unwrap().crtc, 41);
        // An encoder that can take only the second CRTC.
        res.encoders[0].crtc_id = 0;
        res.encoders[0].possible_crtcs = 0b10;
        assert_eq!(choose(&res, None).unwrap().crtc, 41);
        res.encoders[0].possible_crtcs = 0;
        let e = choose(&res, None).unwrap_err();
        assert_eq!(e, "output Virtual-1: no CRTC can drive it");
    }

    #[test]
    fn an_unknown_output_is_used_when_none_says_connected() {
        let res = card(vec![
            connector(1, 11, 2, vec![]),
            connector(2, 17, UNKNOWN_CONNECTION, vec![mode(800, 480, 60, true)]),
        ]);
        assert_eq!(choose(&res, None).unwrap().name, "DPI-1");
    }

    #[test]
    fn no_usable_output_says_what_the_card_has() {
        let res = card(vec![
            connector(1, 11, 2, vec![]),
            connector(2, 10, CONNECTED, vec![]),
            connector(3, 99, 2, vec![]),
        ]);
        let e = choose(&res, None).unwrap_err();
        assert!(
            e.contains("HDMI-A-1 disconnected")
                && e.contains("DP-1 connected, no modes")
                && e.contains("Unknown-1 disconnected"),
            "{e}"
        );
        let e = choose(&Resources::default(), None).unwrap_err();
        assert!(e.contains("no outputs"), "{e}");
    }
}
