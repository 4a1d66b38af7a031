//! Runs the scoring service alone; configuration from the environment.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    iv_platform::telemetry::init();
    let config = scoring_service::Config::from_env(&iv_platform::config::ProcessEnv)?;
    scoring_service::build(config).await?.run().await?;
    Ok(())
}
