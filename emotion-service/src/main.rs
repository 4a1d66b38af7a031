//! Runs the emotion service alone; configuration from the environment.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    iv_platform::telemetry::init();
    let config = emotion_service::Config::from_env(&iv_platform::config::ProcessEnv)?;
    emotion_service::Application::build(config)
        .await?
        .run_until(iv_platform::shutdown::signal())
        .await?;
    Ok(())
}
