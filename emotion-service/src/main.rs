//! Runs the emotion service alone; configuration from the environment.

fn main() -> anyhow::Result<()> {
    emotion_service::one_kernel_thread_per_frame();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    iv_platform::telemetry::init();
    let config = emotion_service::Config::from_env(&iv_platform::config::ProcessEnv)?;
    emotion_service::Application::build(config)
        .await?
        .run_until(iv_platform::shutdown::signal())
        .await?;
    Ok(())
}
