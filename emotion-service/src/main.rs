//! Runs the emotion service alone; configuration from the environment.

fn main() -> anyhow::Result<()> {
    emotion_service::prepare_for_models();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let telemetry = iv_platform::telemetry::init(emotion_service::SERVICE.name);
            let config = emotion_service::Config::from_env(&iv_platform::config::ProcessEnv)?;
            emotion_service::build(config).await?.run().await?;
            telemetry.shutdown().await;
            Ok(())
        })
}
