//! What the agent tells the world about one account ([`Note`]): the log line, the `--json`
//! event (with the account's name where the file has several), the token service's event
//! stream, and the `[agent] hook`.

use super::*;

impl Service<'_> {
    pub(super) fn notify(&mut self, note: Note) {
        let note_is_paired = note == Note::Paired;
        let account = self.a.current.as_ref().and_then(|t| t.account.clone());
        let lifetime = self
            .a
            .current
            .as_ref()
            .and_then(|t| t.expiry.as_ref())
            .map(|e| e.lifetime_secs);
        let (event, hook_env): (Option<serde_json::Value>, Option<(HookEvent, Vec<_>)>) = match note
        {
            Note::Paired | Note::PairedAtStart => {
                let at_start = note == Note::PairedAtStart;
                let current = self.a.current.as_ref();
                let scopes = current.map(|t| t.scopes.clone()).unwrap_or_default();
                eprintln!(
                    "devauth: paired{}{}",
                    account
                        .as_ref()
                        .map(|a| format!(" as {a}"))
                        .unwrap_or_default(),
                    if at_start {
                        "; using the stored tokens"
                    } else {
                        ""
                    }
                );
                let mut event = json!({"event": "paired", "scopes": scopes, "account": account});
                let mut env = vec![];
                if at_start {
                    // The time left on the stored token, rounded (a fresh one reads 3600).
                    let left = current
                        .map(token_info)
                        .and_then(|i| i.remaining)
                        .map(|d| (d + Duration::from_millis(500)).as_secs());
                    event["at_start"] = json!(true);
                    event["expires_in"] = json!(left);
                    env.push(("DEVAUTH_AT_START", "1".to_string()));
                } else {
                    event["expires_in"] = json!(lifetime);
                }
                (Some(event), Some((HookEvent::Paired, env)))
            }
            Note::Refreshed(info) => {
                // Rounded: a fresh 3600 s token reads 3600, not 3599.
                let secs = info
                    .remaining
                    .map(|d| (d + Duration::from_millis(500)).as_secs());
                match secs {
                    Some(s) => eprintln!("devauth: access token renewed; expires in {s} s"),
                    None => eprintln!("devauth: access token renewed; it does not expire"),
                }
                (
                    Some(json!({"event": "refreshed", "expires_in": secs})),
                    Some((HookEvent::Refreshed, vec![])),
                )
            }
            Note::Unpaired { revoked } => {
                eprintln!(
                    "devauth: unpaired ({})",
                    match revoked {
                        Some(true) => "tokens revoked at the provider",
                        Some(false) => "deleted locally; not revoked at the provider",
                        None => "the stored tokens were removed by another command",
                    }
                );
                (
                    Some(json!({"event": "unpaired", "revoked": revoked})),
                    Some((HookEvent::Unpaired, vec![])),
                )
            }
            Note::PairingRequired(reason) => {
                eprintln!("devauth: pairing required: {reason}");
                (
                    Some(json!({"event": "pairing_required", "reason": reason})),
                    Some((
                        HookEvent::PairingRequired,
                        vec![("DEVAUTH_REASON", reason.clone())],
                    )),
                )
            }
            Note::Denied => {
                eprintln!("devauth: access was denied on the provider's page; pairing again soon");
                self.show(&View::Denied);
                (Some(json!({"event": "denied"})), None)
            }
            Note::PairingFailed(message) => {
                eprintln!("devauth: pairing failed: {message}");
                self.show(&View::Error {
                    problem: self.a.pairing_problem,
                });
                (Some(json!({"event": "error", "message": message})), None)
            }
            Note::Retrying { reason, in_secs } => {
                eprintln!("devauth: renewing failed ({reason}); retrying in {in_secs} s");
                (
                    Some(json!({"event": "retrying", "reason": reason, "in_secs": in_secs})),
                    None,
                )
            }
            Note::WaitingForClock => {
                eprintln!("devauth: the clock is not set yet; waiting for network time");
                (Some(json!({"event": "waiting_for_clock"})), None)
            }
            Note::ProbeUnusable => {
                eprintln!(
                    "devauth: the provider's userinfo endpoint refuses this grant's tokens; \
                         the agent will not use it to check the grant"
                );
                (None, None)
            }
        };
        let mut event = event;
        if let (true, Some(event)) = (self.a.config.account.several(), event.as_mut()) {
            event["account_name"] = json!(self.a.config.account.name);
        }
        if let (Some(service), Some(event)) = (&self.s.tokens, &event) {
            if note_is_paired {
                service.new_grant(self.name());
            }
            service.event(self.name(), event);
        }
        if let (true, Some(event)) = (self.s.json, event) {
            setup::emit(&event);
        }
        if let (Some(hook), Some((event, mut env))) = (self.a.parts.hook.clone(), hook_env) {
            // `paired` and `refreshed` mean "the token file is written": never claim a file
            // that could not be written.
            let publishes = matches!(event, HookEvent::Paired | HookEvent::Refreshed);
            match (&self.a.publish_error, publishes) {
                (Some(e), true) => env.push(("DEVAUTH_TOKEN_FILE_ERROR", e.clone())),
                _ => env.push((
                    "DEVAUTH_TOKEN_FILE",
                    self.a.parts.token_file.path().display().to_string(),
                )),
            }
            if let Some(a) = account {
                env.push(("DEVAUTH_ACCOUNT", a));
            }
            if self.a.config.account.several() {
                env.push(("DEVAUTH_ACCOUNT_NAME", self.a.config.account.name.clone()));
            }
            if let Some(t) = &self.a.current {
                if let Some(left) = token_info(t).remaining {
                    env.push(("DEVAUTH_EXPIRES_IN", left.as_secs().to_string()));
                }
                env.push(("DEVAUTH_TOKEN_TYPE", t.token_type.clone()));
            }
            match hook.run(event, &env, &mut *self.s.signals) {
                Ok(HookOutcome::Exited(0)) => {}
                Ok(HookOutcome::Exited(code)) => {
                    eprintln!(
                        "devauth: hook `{}` {}: exit {code}",
                        hook.command,
                        event.name()
                    )
                }
                Ok(HookOutcome::Signalled(sig)) => eprintln!(
                    "devauth: hook `{}` {}: killed by signal {sig}",
                    hook.command,
                    event.name()
                ),
                Ok(HookOutcome::TimedOut) => eprintln!(
                    "devauth: hook `{}` {}: still running after {} s; killed",
                    hook.command,
                    event.name(),
                    hook.timeout.as_secs()
                ),
                Err(e) => eprintln!("devauth: {e}"),
            }
        }
    }
}
