//! Runs the worker alone: RabbitMQ from `AMQP_URL` (the in-process bus without it, which only
//! makes sense inside the one-process stack).

use iv_platform::bus::EventBus;
use iv_platform::config::{Env, ProcessEnv};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = iv_platform::telemetry::init(worker_service::SERVICE.name);
    let config = worker_service::Config::from_env(&ProcessEnv)?;
    let bus = EventBus::from_env(&Env::new(&ProcessEnv)).await?;
    if let EventBus::Memory(_) = bus {
        tracing::warn!("AMQP_URL is not set: the worker only sees events of this process");
    }
    worker_service::build(config, bus).await?.run().await?;
    telemetry.shutdown().await;
    Ok(())
}
