//! Runs the gateway; upstream addresses and edge policies from the environment.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = iv_platform::telemetry::init(gateway::SERVICE.name);
    let config = gateway::Config::from_env(&iv_platform::config::ProcessEnv)?;
    gateway::build(config).await?.run().await?;
    telemetry.shutdown().await;
    Ok(())
}
