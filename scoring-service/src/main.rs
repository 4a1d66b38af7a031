//! Runs the scoring service alone; configuration from the environment.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = iv_platform::telemetry::init(scoring_service::SERVICE.name);
    let config = scoring_service::Config::from_env(&iv_platform::config::ProcessEnv)?;
    scoring_service::build(config).await?.run().await?;
    telemetry.shutdown().await;
    Ok(())
}
