//! The countdown slot's content: the longest wording of the time left (or of the next try)
//! that fits the slot, in the profile's language, down to the time alone.

use super::text::{Face, clock_text};
use super::words::Words;
use super::{Role, ShapedLine, Tick, Ticker};
use crate::screen::catalog::{Catalog, Msg, Slot};
use crate::screen::{CodeScreen, View};

/// Seconds a renewed code says "new code" where the countdown has no room for both.
const NEW_CODE_SECS: u64 = 15;

/// What the countdown slot shows for `view` (None when the view has no countdown): the
/// longest wording that fits the slot, down to the time alone.
pub fn tick(view: &View, slot: &Ticker) -> Option<Tick> {
    let face = Face::new(slot.font, slot.scale);
    let words = Words {
        lang: &slot.language,
        mono: slot.mono,
    };
    let permille = |c: &CodeScreen| {
        let life = c.lifetime.as_millis().max(1);
        let left = c.remaining.as_millis().min(life);
        u32::try_from(left * 1000 / life).unwrap_or(1000)
    };
    // A wording: a sentence with its values, or (`None`) the time alone.
    let render = |msg: Option<Msg>, args: &[(Slot, &str)]| -> (String, Option<ShapedLine>) {
        let value = args.first().map_or("", |a| a.1);
        let shaped = match (slot.language.pack(), msg) {
            (None, _) => None,
            (Some(_), Some(m)) => words.line(m, args, face),
            (Some(_), None) => words.number(value, face),
        };
        // A pack that cannot draw it (a damaged one): English in the u8g2 face.
        let catalog = match (slot.language.pack(), &shaped) {
            (Some(_), None) => Catalog::english(),
            _ => slot.language.words(),
        };
        let text = msg.map_or_else(|| value.to_string(), |m| catalog.fill(m, args));
        (text, shaped)
    };
    let fits = |(text, shaped): &(String, Option<ShapedLine>)| {
        let w = shaped
            .as_ref()
            .map_or_else(|| face.width(text), |s| s.size().width);
        w <= slot.rect.size.width
    };
    // The longest of `candidates` that fits, else the last one.
    let first_fitting = |candidates: Vec<(String, Option<ShapedLine>)>| {
        let last = candidates.last().cloned().unwrap_or_default();
        candidates.into_iter().find(|c| fits(c)).unwrap_or(last)
    };
    let ((text, shaped), role, permille) = match view {
        View::WaitingForUser(c) => {
            let t = clock_text(c.remaining.as_secs());
            let minutes = [(Slot::Minutes, t.as_str())];
            let chosen = if c.remaining.is_zero() {
                render(Some(Msg::CodeExpired), &[])
            } else if c.renewed {
                let fresh = c.lifetime.saturating_sub(c.remaining).as_secs() < NEW_CODE_SECS;
                let mut candidates = vec![render(Some(Msg::CodeExpiresNew), &minutes)];
                if fresh {
                    candidates.push(render(Some(Msg::CodeNew), &[]));
                }
                candidates.push(render(None, &minutes));
                first_fitting(candidates)
            } else {
                first_fitting(vec![
                    render(Some(Msg::CodeExpires), &minutes),
                    render(None, &minutes),
                ])
            };
            (chosen, Role::Muted, permille(c))
        }
        View::Retrying { in_secs, code, .. } => {
            let secs = in_secs.to_string();
            let seconds = (Slot::Seconds, secs.as_str());
            let short = render(Some(Msg::RetryingIn), &[seconds]);
            let chosen = match code {
                Some(c) => {
                    let t = clock_text(c.remaining.as_secs());
                    let minutes = (Slot::Minutes, t.as_str());
                    first_fitting(vec![
                        render(Some(Msg::RetryingInCode), &[seconds, minutes]),
                        short,
                        render(None, &[minutes]),
                    ])
                }
                None => short,
            };
            (chosen, Role::Warn, code.as_ref().map_or(0, permille))
        }
        _ => return None,
    };
    Some(Tick {
        text,
        shaped,
        role,
        permille,
    })
}
