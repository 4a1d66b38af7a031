//! `loadgen`: N candidates at F frames/s through the gateway, with an optional spike. See
//! [`loadgen::Options`] for the flags.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{}", loadgen::USAGE);
        return Ok(());
    }
    let options = loadgen::Options::from_args(args)?;
    loadgen::run(options).await
}
