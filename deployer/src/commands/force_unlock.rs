//! `deployer force-unlock --env E LOCK_ID`.

use state::Backend;

use crate::error::CliError;

pub async fn run(backend: &Backend, environment: &str, lock_id: &str) -> Result<String, CliError> {
    backend
        .force_unlock(environment, lock_id)
        .await
        .map_err(CliError::state(format!(
            "force-unlocking the state of {environment}"
        )))?;
    Ok(format!("Removed lock {lock_id} of {environment}."))
}
