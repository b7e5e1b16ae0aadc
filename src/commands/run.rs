//! `devauth run`: hands the loaded config to the agent's loop (`agent::driver`), which keeps
//! the tokens fresh, publishes the access token and re-pairs when the grant is gone.

use crate::config::Config;
use crate::error::Error;
use std::path::Path;

pub(crate) fn run(config_path: &Path, config: Config, json: bool) -> Result<(), Error> {
    crate::agent::driver::run(config_path, config, json)
}
