//! A screen that says which account is being paired: it puts the account's label into every
//! code it shows ("Adding: Kids", [`CodeScreen::profile`]) and passes the rest through. Used
//! where a file has several accounts (`pair --account`, the agent).

use super::{CodeScreen, Screen, View};
use crate::screen::error::DisplayError;

pub struct Profiled<'a, S: Screen + ?Sized> {
    pub inner: &'a mut S,
    /// `None`: the views pass unchanged.
    pub profile: Option<String>,
}

impl<S: Screen + ?Sized> Screen for Profiled<'_, S> {
    fn show(&mut self, view: &View) -> Result<(), DisplayError> {
        let Some(profile) = &self.profile else {
            return self.inner.show(view);
        };
        let with = |c: &CodeScreen| CodeScreen {
            profile: Some(profile.clone()),
            ..c.clone()
        };
        match view {
            View::WaitingForUser(c) => self.inner.show(&View::WaitingForUser(with(c))),
            View::Retrying {
                reason,
                in_secs,
                code: Some(c),
            } => self.inner.show(&View::Retrying {
                reason: reason.clone(),
                in_secs: *in_secs,
                code: Some(with(c)),
            }),
            other => self.inner.show(other),
        }
    }

    fn release(&mut self, blank: bool) -> Result<(), DisplayError> {
        self.inner.release(blank)
    }
}
