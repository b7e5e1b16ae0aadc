//! Taking the Linux console while devauth owns the screen.
//!
//! Where fbcon is bound to the framebuffer devauth draws on, the kernel console keeps drawing
//! too: its cursor blinks in the top-left corner and anything written to the VT (kernel
//! messages, a getty, a boot script) lands over the pairing screen and is never repaired. A VT
//! in graphics mode (`KDSETMODE KD_GRAPHICS`) is left alone by fbcon, so while a pixel backend
//! holds the display, its VT is in graphics mode, and the mode it had before (read with
//! `KDGETMODE`) is put back whenever devauth lets go: [`Console::hand_back`] (the agent hands
//! the display back) and `Drop` (every exit, error or not, that unwinds the screen).
//!
//! The console is taken only after the display device is open: a VT switched to graphics mode
//! before the display driver has probed stays in VGA text mode (the console never makes its
//! first mode switch), and nothing drawn on the framebuffer shows.
//!
//! The kernel ignores VT switches while the VT on screen is in graphics mode (KD_GRAPHICS with
//! VT_AUTO), so a held console is not switched away from. Where graphics mode could not be set,
//! or `tty` names a VT that is not on screen, switches happen, and after one away and back what
//! the other VT drew is on the display: each paint first asks which VT is on screen
//! ([`Console::visibility`]); while another VT is, devauth draws nothing, and when its own
//! comes back it draws the whole screen again. The switch is seen at the next paint (the
//! countdown ticks every second), not at the instant it happens.
//!
//! Where the console cannot be had (no permission, no VT, `tty` not a VT), devauth says so once
//! on stderr and goes on drawing: docs/deploy.md says what to do instead.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::screen::settings::ConsoleTty;

// <linux/kd.h>, <linux/vt.h>
const KDSETMODE: u32 = 0x4B3A;
const KDGETMODE: u32 = 0x4B3B;
const VT_GETSTATE: u32 = 0x5603;
/// `KD_TEXT`: the console draws.
pub const KD_TEXT: libc::c_int = 0;
/// `KD_GRAPHICS`: the console leaves the screen to a program.
pub const KD_GRAPHICS: libc::c_int = 1;
/// The character device major of `/dev/ttyN` (minor N, 1..=63; 0 is `/dev/tty0`).
const TTY_MAJOR: u64 = 4;
const MAX_VT: u64 = 63;

#[repr(C)]
#[derive(Default)]
struct VtStat {
    v_active: libc::c_ushort,
    v_signal: libc::c_ushort,
    v_state: libc::c_ushort,
}

/// The three things devauth asks of a VT; the real one is a `/dev/ttyN` ([`TtyDevice`]), the
/// tests' a fake.
pub trait Vt {
    fn mode(&self) -> io::Result<libc::c_int>;
    fn set_mode(&self, mode: libc::c_int) -> io::Result<()>;
    /// The number of the VT on screen now.
    fn active(&self) -> io::Result<u16>;
}

/// An open `/dev/ttyN`.
pub struct TtyDevice(File);

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl Vt for TtyDevice {
    fn mode(&self) -> io::Result<libc::c_int> {
        let mut mode: libc::c_int = KD_TEXT;
        // SAFETY: KDGETMODE writes one int through the pointer, which lives for the call. The
        // request is converted with `as _`: its type is c_ulong on glibc and c_int on musl.
        check(unsafe { libc::ioctl(self.0.as_raw_fd(), KDGETMODE as _, &mut mode) })?;
        Ok(mode)
    }

    fn set_mode(&self, mode: libc::c_int) -> io::Result<()> {
        // SAFETY: KDSETMODE takes the mode by value and touches no memory of ours.
        check(unsafe { libc::ioctl(self.0.as_raw_fd(), KDSETMODE as _, mode as libc::c_ulong) })
    }

    fn active(&self) -> io::Result<u16> {
        active_vt(&self.0)
    }
}

fn active_vt(file: &File) -> io::Result<u16> {
    let mut stat = VtStat::default();
    // SAFETY: VT_GETSTATE writes one `struct vt_stat` (three unsigned shorts, the layout
    // above) through the pointer, which lives for the call.
    check(unsafe { libc::ioctl(file.as_raw_fd(), VT_GETSTATE as _, &mut stat) })?;
    Ok(stat.v_active)
}

/// Which VT a character device is, from its device number: `Ok(Some(n))` for `/dev/ttyN`,
/// `Ok(None)` for `/dev/tty0` (the VT on screen, whichever it is), an error for anything else.
pub fn vt_number(rdev: u64) -> Result<Option<u16>, String> {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    match (major, minor) {
        (TTY_MAJOR, 0) => Ok(None),
        (TTY_MAJOR, n @ 1..=MAX_VT) => Ok(u16::try_from(n).ok()),
        _ => Err(format!(
            "not a virtual terminal (device {major}:{minor}; VTs are /dev/tty1../dev/tty63)"
        )),
    }
}

fn open_tty(path: &Path) -> io::Result<File> {
    // O_NOCTTY: the console must not become devauth's controlling terminal (a hang-up on it
    // would then be devauth's SIGHUP).
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
}

/// An opened VT: the device, its name (for messages) and its number.
pub struct OpenedVt<V> {
    pub vt: V,
    pub name: String,
    pub number: u16,
}

/// Opens the VT `setting` names: `Ok(None)` when switched off (`tty = "none"`), else the
/// opened VT, or why not (a sentence naming the device).
pub fn open_vt(setting: &ConsoleTty) -> Result<Option<OpenedVt<TtyDevice>>, String> {
    let path = match setting {
        ConsoleTty::Off => return Ok(None),
        ConsoleTty::Active => PathBuf::from("/dev/tty0"),
        ConsoleTty::Path(p) => p.clone(),
    };
    let name = path.display().to_string();
    let file = open_tty(&path).map_err(|e| format!("{name}: {e}"))?;
    let rdev = file.metadata().map_err(|e| format!("{name}: {e}"))?.rdev();
    if let Some(number) = vt_number(rdev).map_err(|why| format!("{name}: {why}"))? {
        return Ok(Some(OpenedVt {
            vt: TtyDevice(file),
            name,
            number,
        }));
    }
    // /dev/tty0 follows whichever VT is on screen; the one to hold is that VT itself, so a
    // later switch leaves it (and its mode) where it was.
    let number = active_vt(&file).map_err(|e| format!("{name}: asking for the active VT: {e}"))?;
    let name = format!("/dev/tty{number}");
    let file = open_tty(Path::new(&name)).map_err(|e| format!("{name}: {e}"))?;
    Ok(Some(OpenedVt {
        vt: TtyDevice(file),
        name,
        number,
    }))
}

/// What a paint should do, from which VT is on screen (see [`visibility`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Devauth's VT is on screen, as at the last paint: draw what changed.
    Shown,
    /// Another VT is on screen: draw nothing (it would land on that console).
    Hidden,
    /// Devauth's VT is back after another one: what is on the display is not ours, draw it all.
    Returned,
}

/// The decision, pure: `ours` is devauth's VT, `active` the one on screen (`None` when that
/// could not be asked: then devauth draws, as it would without a console), `was_away` whether
/// another VT was on screen at the last look. Returns the decision and the new `was_away`.
pub fn visibility(ours: u16, active: Option<u16>, was_away: bool) -> (Visibility, bool) {
    match active {
        Some(a) if a != ours => (Visibility::Hidden, true),
        _ if was_away => (Visibility::Returned, false),
        _ => (Visibility::Shown, false),
    }
}

/// The held console: the VT, its name and number, and the mode to put back (`Some` while
/// devauth has it in graphics mode).
struct Held<V> {
    vt: V,
    name: String,
    number: u16,
    saved: Option<libc::c_int>,
    away: bool,
}

/// Where a [`Console`] says it cannot take the VT (stderr, once; the tests' a list).
pub type Notice = Box<dyn FnMut(&str)>;

/// Devauth's hold on the console (see the module docs). Inert when there is no VT to hold.
pub struct Console<V: Vt = TtyDevice> {
    held: Option<Held<V>>,
    notice: Notice,
    told: bool,
}

/// Said on stderr once per process, however many screens are opened.
fn stderr_once(message: &str) {
    static TOLD: AtomicBool = AtomicBool::new(false);
    if !TOLD.swap(true, Ordering::Relaxed) {
        eprintln!("devauth: {message}");
    }
}

impl Console<TtyDevice> {
    /// Takes the console `setting` names into graphics mode, or says once why it cannot.
    pub fn take(setting: &ConsoleTty) -> Console<TtyDevice> {
        Console::start(open_vt(setting), Box::new(stderr_once))
    }
}

impl<V: Vt> Console<V> {
    /// A console from an opened VT (or why there is none), telling `notice` about problems;
    /// it is put in graphics mode at once.
    pub fn start(vt: Result<Option<OpenedVt<V>>, String>, notice: Notice) -> Console<V> {
        let mut console = Console {
            held: None,
            notice,
            told: false,
        };
        match vt {
            Ok(Some(OpenedVt { vt, name, number })) => {
                console.held = Some(Held {
                    vt,
                    name,
                    number,
                    saved: None,
                    away: false,
                });
                console.grab();
            }
            Ok(None) => {}
            Err(why) => console.tell(&why),
        }
        console
    }

    fn tell(&mut self, why: &str) {
        if !self.told {
            self.told = true;
            (self.notice)(&format!(
                "cannot take the console ({why}); the kernel console may draw over the screen (docs/deploy.md says what to do)"
            ));
        }
    }

    /// Puts the VT in graphics mode, remembering its mode; again after a [`Self::hand_back`].
    pub fn grab(&mut self) {
        let Some(h) = &mut self.held else { return };
        if h.saved.is_some() {
            return;
        }
        let before = h.vt.mode().unwrap_or(KD_TEXT);
        let result = h.vt.set_mode(KD_GRAPHICS);
        let name = h.name.clone();
        match result {
            Ok(()) => h.saved = Some(before),
            Err(e) => self.tell(&format!("{name}: KDSETMODE: {e}")),
        }
    }

    /// Puts back the mode the VT had; the next [`Self::grab`] takes it again.
    pub fn hand_back(&mut self) {
        let Some(h) = &mut self.held else { return };
        let Some(mode) = h.saved.take() else { return };
        if let Err(e) = h.vt.set_mode(mode) {
            let name = h.name.clone();
            self.tell(&format!("{name}: restoring its mode: {e}"));
        }
    }

    /// Whether devauth holds the VT in graphics mode now.
    pub fn holds(&self) -> bool {
        self.held.as_ref().is_some_and(|h| h.saved.is_some())
    }

    /// Which VT is on screen, as a paint decision (always `Shown` without a VT).
    pub fn visibility(&mut self) -> Visibility {
        let Some(h) = &mut self.held else {
            return Visibility::Shown;
        };
        let (v, away) = visibility(h.number, h.vt.active().ok(), h.away);
        h.away = away;
        v
    }
}

impl<V: Vt> Drop for Console<V> {
    fn drop(&mut self) {
        self.hand_back();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;

    /// A VT that records the modes it was set to.
    #[derive(Clone)]
    struct FakeVt {
        mode: Rc<Cell<libc::c_int>>,
        sets: Rc<RefCell<Vec<libc::c_int>>>,
        active: Rc<Cell<u16>>,
        refuse: bool,
    }

    impl FakeVt {
        fn new(mode: libc::c_int) -> FakeVt {
            FakeVt {
                mode: Rc::new(Cell::new(mode)),
                sets: Rc::default(),
                active: Rc::new(Cell::new(2)),
                refuse: false,
            }
        }
    }

    impl Vt for FakeVt {
        fn mode(&self) -> io::Result<libc::c_int> {
            Ok(self.mode.get())
        }
        fn set_mode(&self, mode: libc::c_int) -> io::Result<()> {
            if self.refuse {
                return Err(io::Error::from_raw_os_error(libc::EPERM));
            }
            self.sets.borrow_mut().push(mode);
            self.mode.set(mode);
            Ok(())
        }
        fn active(&self) -> io::Result<u16> {
            Ok(self.active.get())
        }
    }

    type Notes = Rc<RefCell<Vec<String>>>;

    fn opened(vt: &FakeVt, name: &str, number: u16) -> Result<Option<OpenedVt<FakeVt>>, String> {
        Ok(Some(OpenedVt {
            vt: vt.clone(),
            name: name.into(),
            number,
        }))
    }

    fn notes() -> (Notes, Notice) {
        let told = Rc::new(RefCell::new(Vec::new()));
        let sink = told.clone();
        (
            told,
            Box::new(move |m: &str| sink.borrow_mut().push(m.to_string())),
        )
    }

    #[test]
    fn graphics_mode_while_held_and_the_old_mode_back_on_drop_and_hand_back() {
        let vt = FakeVt::new(KD_TEXT);
        let (told, sink) = notes();
        let mut c = Console::start(opened(&vt, "/dev/tty2", 2), sink);
        assert!(c.holds());
        assert_eq!(vt.mode.get(), KD_GRAPHICS);
        c.hand_back();
        assert_eq!(vt.mode.get(), KD_TEXT);
        c.hand_back(); // twice is once
        c.grab();
        assert_eq!(vt.mode.get(), KD_GRAPHICS);
        drop(c);
        assert_eq!(vt.mode.get(), KD_TEXT);
        assert_eq!(
            *vt.sets.borrow(),
            [KD_GRAPHICS, KD_TEXT, KD_GRAPHICS, KD_TEXT]
        );
        assert!(told.borrow().is_empty());
    }

    #[test]
    fn a_vt_already_in_graphics_mode_is_left_in_it() {
        let vt = FakeVt::new(KD_GRAPHICS);
        let (_, sink) = notes();
        drop(Console::start(opened(&vt, "/dev/tty1", 1), sink));
        assert_eq!(*vt.sets.borrow(), [KD_GRAPHICS, KD_GRAPHICS]);
    }

    #[test]
    fn a_console_it_cannot_have_is_said_once_and_nothing_else_happens() {
        let (told, sink) = notes();
        let mut c: Console<FakeVt> =
            Console::start(Err("/dev/tty0: Permission denied".into()), sink);
        assert!(!c.holds());
        assert_eq!(c.visibility(), Visibility::Shown);
        c.grab();
        c.hand_back();
        drop(c);
        let told = told.borrow();
        assert_eq!(told.len(), 1, "{told:?}");
        assert!(
            told[0].contains("/dev/tty0: Permission denied") && told[0].contains("deploy.md"),
            "{}",
            told[0]
        );

        // A VT that refuses KDSETMODE (no CAP_SYS_TTY_CONFIG): once, however often retried.
        let mut vt = FakeVt::new(KD_TEXT);
        vt.refuse = true;
        let (told, sink) = notes();
        let mut c = Console::start(opened(&vt, "/dev/tty3", 3), sink);
        for _ in 0..3 {
            c.hand_back();
            c.grab();
        }
        drop(c);
        assert_eq!(told.borrow().len(), 1, "{:?}", told.borrow());
        assert!(told.borrow()[0].contains("/dev/tty3: KDSETMODE"));
        assert_eq!(vt.mode.get(), KD_TEXT);
    }

    #[test]
    fn switched_off_says_nothing() {
        let (told, sink) = notes();
        let c: Console<FakeVt> = Console::start(Ok(None), sink);
        assert!(!c.holds());
        drop(c);
        assert!(told.borrow().is_empty());
    }

    #[test]
    fn the_whole_screen_is_drawn_again_when_the_vt_comes_back() {
        use Visibility::*;
        assert_eq!(visibility(2, Some(2), false), (Shown, false));
        assert_eq!(visibility(2, Some(3), false), (Hidden, true));
        assert_eq!(visibility(2, Some(3), true), (Hidden, true));
        assert_eq!(visibility(2, Some(2), true), (Returned, false));
        assert_eq!(visibility(2, None, false), (Shown, false));
        assert_eq!(visibility(2, None, true), (Returned, false));

        let vt = FakeVt::new(KD_TEXT);
        let (_, sink) = notes();
        let mut c = Console::start(opened(&vt, "/dev/tty2", 2), sink);
        assert_eq!(c.visibility(), Shown);
        vt.active.set(1);
        assert_eq!(c.visibility(), Hidden);
        assert_eq!(c.visibility(), Hidden);
        vt.active.set(2);
        assert_eq!(c.visibility(), Returned);
        assert_eq!(c.visibility(), Shown);
    }

    #[test]
    fn vt_numbers_from_device_numbers() {
        let dev = |major: u64, minor: u64| (major << 8) | minor;
        assert_eq!(vt_number(dev(4, 1)), Ok(Some(1)));
        assert_eq!(vt_number(dev(4, 63)), Ok(Some(63)));
        assert_eq!(vt_number(dev(4, 0)), Ok(None));
        // /dev/ttyS0 (4:64), /dev/console (5:1), /dev/null (1:3)
        for (major, minor) in [(4, 64), (5, 1), (1, 3)] {
            let e = vt_number(dev(major, minor)).unwrap_err();
            assert!(e.contains(&format!("{major}:{minor}")), "{e}");
        }
    }

    #[test]
    fn a_path_that_is_not_a_vt_is_named_in_the_error() {
        let e = open_vt(&ConsoleTty::Path("/dev/null".into()))
            .err()
            .unwrap();
        assert!(e.starts_with("/dev/null: not a virtual terminal"), "{e}");
        let e = open_vt(&ConsoleTty::Path("/nonexistent/tty9".into()))
            .err()
            .unwrap();
        assert!(e.starts_with("/nonexistent/tty9: "), "{e}");
        assert!(open_vt(&ConsoleTty::Off).unwrap().is_none());
    }

    #[test]
    fn vt_stat_is_the_kernel_layout() {
        assert_eq!(std::mem::size_of::<VtStat>(), 6);
    }
}
