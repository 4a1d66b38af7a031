//! Runs the gateway; upstream addresses and edge policies from the environment.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    iv_platform::telemetry::init();
    let config = gateway::Config::from_env(&iv_platform::config::ProcessEnv)?;
    gateway::build(config).await?.run().await?;
    Ok(())
}
