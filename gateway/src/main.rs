//! Runs the gateway; upstream addresses and edge policies from the environment.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    iv_platform::telemetry::init();
    let config = gateway::Config::from_env(&iv_platform::config::ProcessEnv)?;
    gateway::Application::build(config)
        .await?
        .run_until(iv_platform::shutdown::signal())
        .await?;
    Ok(())
}
