//! Packs a rootfs into an OCI image layout; used by `scripts/bench-pack.sh`.
//!
//! Usage: `pack ROOTFS DEST TAG gzip|zstd [LEVEL]`. Honours SOURCE_DATE_EPOCH
//! as the mtime clamp and creation time, and PACK_THREADS (default: all cores).

use std::path::Path;
use std::process::ExitCode;

use corral_oci::{build_image_layout, Compression, ImageConfigSpec, PackOptions};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 || args.len() > 6 {
        eprintln!("usage: pack ROOTFS DEST TAG gzip|zstd [LEVEL]");
        return ExitCode::from(2);
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut msg = e.to_string();
            let mut source = std::error::Error::source(&*e);
            while let Some(s) = source {
                msg.push_str(&format!(": {s}"));
                source = s.source();
            }
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let epoch: Option<i64> = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .map(|v| v.parse())
        .transpose()?;
    let opts = PackOptions {
        compression: args[4].parse::<Compression>()?,
        level: args.get(5).map(|l| l.parse()).transpose()?,
        clamp_mtime: epoch,
        threads: std::env::var("PACK_THREADS")
            .ok()
            .map(|v| v.parse())
            .transpose()?
            .unwrap_or(0),
        ..Default::default()
    };
    let cfg = ImageConfigSpec {
        architecture: "amd64".into(),
        os: "linux".into(),
        created: epoch.unwrap_or(0),
        ..Default::default()
    };
    let image = build_image_layout(
        Path::new(&args[1]),
        Path::new(&args[2]),
        &args[3],
        &cfg,
        &[],
        &opts,
    )?;
    println!(
        "manifest={} layer={} size={} uncompressed={} entries={}",
        image.manifest_digest,
        image.layer.digest,
        image.layer.size,
        image.layer.uncompressed_size,
        image.layer.entries
    );
    Ok(())
}
