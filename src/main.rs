//! devauth's entry point: parse the arguments, run the command, print any error once and pick
//! the exit code. Everything else lives in the library (`commands` and below).

use std::process::ExitCode;

fn main() -> ExitCode {
    let code = match devauth::cli::parse(std::env::args_os().skip(1)) {
        Err(e) => {
            eprintln!("devauth: {e}");
            2
        }
        Ok(cli) => {
            let result = devauth::commands::run(cli);
            devauth::stdout::flush();
            // Output that could not be written decides the code, whatever the command did: its
            // caller is missing what it asked for. One line, none for a reader that left.
            match (devauth::stdout::failure(), result) {
                (Some(failed), _) => {
                    if !failed.closed {
                        eprintln!("devauth: {failed}");
                    }
                    1
                }
                (None, Ok(())) => 0,
                (None, Err(e)) => {
                    if !e.already_reported() {
                        eprintln!("devauth: {e}");
                    }
                    e.exit_code()
                }
            }
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
