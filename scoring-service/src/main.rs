//! Runs the scoring service alone; configuration from the environment.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    iv_platform::telemetry::init();
    let config = scoring_service::Config::from_env(&iv_platform::config::ProcessEnv)?;
    scoring_service::Application::build(config)
        .await?
        .run_until(iv_platform::shutdown::signal())
        .await?;
    Ok(())
}
